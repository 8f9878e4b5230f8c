"""Text-side ablation: what the language model adds, with everything else chosen alike.

    python bench/ablation.py                      # the text datasets of issue 15
    python bench/ablation.py --datasets douban-small

Three variants of the same pipeline (number of groups, blends and new-user mix chosen on
validation as usual; the encoder is the one ``embedding.model = "auto"`` picks):

- ``head``: the default (frozen sentence vectors bent toward behaviour by the head);
- ``none``: ``align.method = "none"``, the frozen sentence vectors as they are;
- ``behaviour``: the text weight of the user vectors fixed at 0 and no text → item model
  for new users (``recommend.cold_weight = cold_spread_weight = 0``): groups from behaviour
  alone; new users are still placed into a group by their text.

Writes ``bench/results/ablation.json`` (atomically), with the load average at the start of
each run (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from usergroups.config import DiscoveryConfig
from usergroups.datasets import load_dataset
from usergroups.persistence.atomic import atomic_write_bytes
from usergroups.report.benchmark import evaluate_discovery

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("amazon2014:musical-instruments", "douban-small", "yelp-10k")
VARIANTS: dict[str, dict[str, Any]] = {
    "head": {},
    "none": {"align.method": "none"},
    "behaviour": {
        "user_vectors.text_weight": 0.0,
        "recommend.cold_weight": 0.0,
        "recommend.cold_spread_weight": 0.0,
    },
}


def run(name: str, variant: str) -> dict[str, Any]:
    cfg = DiscoveryConfig().with_overrides(VARIANTS[variant])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    r = evaluate_discovery(
        load_dataset(name), cfg, baselines=("Pop",), stability_seeds=0, k_sweep=()
    )
    cold = r.get("cold", {}).get("methods", {})
    align = r.get("alignment") or {}
    return {
        "variant": variant,
        "encoder": (r.get("encoder_choice") or {}).get("model"),
        "n_groups": r["groups"]["n_groups"],
        "group_lift": r["groups"]["group_lift"],
        "warm_ndcg": r["methods"]["UserGroups"]["NDCG@10"],
        "hybrid_ndcg": r["methods"].get("Hybrid", {}).get("NDCG@10"),
        "cold_ndcg": cold.get("UserGroups", {}).get("NDCG@10"),
        "cold_pop_ndcg": cold.get("Pop", {}).get("NDCG@10"),
        "new_users": align.get("new_users"),
        "alignment_seconds": align.get("seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "load_at_start": load,
    }


def _fmt(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render_markdown(results: dict[str, Any]) -> str:
    """The text-side ablation as a markdown section (``write_docs`` in bench/run.py)."""
    lines = [
        "## Text-side ablation (bench/ablation.py)",
        "",
        "What the language model adds: the same pipeline with the head (`head`, the "
        "default), with frozen sentence vectors (`none`), and with groups from behaviour "
        "alone and no text → item model for new users (`behaviour`; new users are still "
        "placed in a group by their text). Everything else is chosen on validation as "
        "usual; only Pop is run beside it, no sweep, no stability seeds.",
        "",
        "| dataset | variant | encoder | K | group lift | UserGroups NDCG@10 | Hybrid NDCG@10 "
        "| cold NDCG@10 | cold ÷ Pop | new-user mix | seconds | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        for r in rows:
            cold, pop = r.get("cold_ndcg"), r.get("cold_pop_ndcg")
            ratio = f"{cold / pop:.2f}×" if cold is not None and pop else "–"
            lines.append(
                f"| {name} | {r.get('variant', r.get('align'))} | {r.get('encoder') or '–'} "
                f"| {r.get('n_groups')} | {_fmt(r.get('group_lift'), 3)} "
                f"| {_fmt(r.get('warm_ndcg'))} | {_fmt(r.get('hybrid_ndcg'))} "
                f"| {_fmt(cold)} | {ratio} | {r.get('new_users') or '–'} "
                f"| {_fmt(r.get('seconds'), 0)} | {_fmt(r.get('load_at_start'), 1)} |"
            )
    lines += ["", "Command: `python bench/ablation.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ablation.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {}
    for name in args.datasets:
        results[name] = []
        for variant in args.variants:
            row = run(name, variant)
            results[name].append(row)
            print(name, json.dumps(row), flush=True)
            # written after every run, so a long ablation leaves what finished
            atomic_write_bytes(args.out, json.dumps(results, indent=2).encode())


if __name__ == "__main__":
    main()
