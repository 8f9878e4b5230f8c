"""Which truncation length to embed reviews at: chosen on validation, not by habit.

all-MiniLM-L6-v2 was trained on 128-token inputs; sentence-transformers truncates at 256
by default. Fewer tokens embed faster (attention and feed-forward cost scale with them);
whether the tail of a long review carries signal is measured here, on the validation carve
the pipeline cuts from *training* data (never the test users of ``bench/run.py``): each
``max_seq_length`` fits the whole default pipeline and reports what its validation grids
saw (the alignment head's warm NDCG@10, the chosen groups' NDCG@10, the best new-user
NDCG@10) and the embedding time.

    python bench/truncation.py                      # Amazon MI and Yelp 10k, 128 and 256
    python bench/truncation.py --datasets amazon2014:musical-instruments --lengths 128 256

Results go to ``bench/results/truncation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import write_results

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "truncation.json"


def _best(rows: list[dict[str, Any]] | None) -> float | None:
    return max((float(r["ndcg"]) for r in rows or []), default=None)


def run_one(dataset: str, length: int, cache_dir: str) -> dict[str, Any]:
    from usergroups import DiscoveryConfig, GroupDiscovery
    from usergroups.datasets import load_dataset

    ds = load_dataset(dataset)
    cfg = DiscoveryConfig().with_overrides(
        {
            "embedding.max_seq_length": length,
            "embedding.cache_dir": cache_dir,
            "reuse": False,
        }
    )
    started = time.perf_counter()
    gd = GroupDiscovery(cfg).fit(ds)
    report = gd.metrics_.get("alignment") or {}
    return {
        "dataset": dataset,
        "max_seq_length": length,
        "encoder": gd.metrics_["encoder"],
        "embedding_seconds": round(gd.metrics_["timings"]["embedding"], 1),
        "fit_seconds": round(time.perf_counter() - started, 1),
        "val_head_ndcg": report.get("direct_val_ndcg"),
        "val_group_ndcg": report.get("group_val_ndcg"),
        "val_cold_ndcg": _best(report.get("cold_mixes")) or _best(report.get("cold_curve")),
        "n_groups": gd.metrics_["n_groups"],
        "text_weight": report.get("text_weight"),
        "validation": report.get("validation"),
    }


def render_markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md (rendered by ``bench/run.py``)."""

    def num(v: Any, fmt: str = ".4f") -> str:
        return "–" if v is None else format(v, fmt)

    lines = [
        "## Truncation length, chosen on validation (bench/truncation.py)",
        "",
        f"Command: `{result.get('command', 'python bench/truncation.py')}`; "
        f"{result.get('measured', '')}. {result.get('note', '')}",
        "",
        "Every figure is from the validation carve cut from *training* data (never the test "
        "users above): the alignment head's warm NDCG@10, the chosen groups' NDCG@10, the "
        "best new-user NDCG@10.",
        "",
        "| dataset | max_seq_length | head NDCG@10 | groups NDCG@10 | new users NDCG@10 | "
        "groups (text weight) | embedding s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result.get("runs", []):
        lines.append(
            f"| {r['dataset']} | {r['max_seq_length']} | {num(r.get('val_head_ndcg'))} | "
            f"{num(r.get('val_group_ndcg'))} | {num(r.get('val_cold_ndcg'))} | "
            f"{r.get('n_groups')} ({r.get('text_weight')}) | "
            f"{num(r.get('embedding_seconds'), '.1f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["amazon2014:musical-instruments", "yelp-10k"]
    )
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: a new one)")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="usergroups-trunc-")
    runs = []
    for dataset in args.datasets:
        for length in args.lengths:
            load = os.getloadavg()[0]
            row = run_one(dataset, length, cache_dir)
            row["load_before"] = round(load, 2)
            row["load_after"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)
            runs.append(row)
    write_results(RESULTS, "truncation.py", argv, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
