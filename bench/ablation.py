"""Ablation of the alignment head: the same pipeline with ``align.method`` = head and none.

    python bench/ablation.py                      # the three datasets of issue 4
    python bench/ablation.py --datasets ml-100k

Everything else (validation-chosen number of groups, text weight and blends) is the same,
so the difference is what the head adds. Writes ``bench/results/ablation.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from usergroups.config import DiscoveryConfig
from usergroups.datasets import load_dataset
from usergroups.persistence.atomic import atomic_write_bytes
from usergroups.report.benchmark import evaluate_discovery

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("amazon2014:musical-instruments", "ml-100k", "ml-latest-small")


def run(name: str, method: str) -> dict[str, Any]:
    cfg = DiscoveryConfig().with_overrides({"align.method": method})
    started = time.perf_counter()
    r = evaluate_discovery(
        load_dataset(name), cfg, baselines=("Pop",), stability_seeds=0, k_sweep=()
    )
    cold = r.get("cold", {}).get("methods", {})
    return {
        "align": method,
        "n_groups": r["groups"]["n_groups"],
        "group_lift": r["groups"]["group_lift"],
        "warm_ndcg": r["methods"]["UserGroups"]["NDCG@10"],
        "hybrid_ndcg": r["methods"].get("Hybrid", {}).get("NDCG@10"),
        "cold_ndcg": cold.get("UserGroups", {}).get("NDCG@10"),
        "cold_pop_ndcg": cold.get("Pop", {}).get("NDCG@10"),
        "alignment_seconds": (r.get("alignment") or {}).get("seconds"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ablation.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {name: [run(name, m) for m in ("head", "none")] for name in args.datasets}
    atomic_write_bytes(args.out, json.dumps(results, indent=2).encode())
    for name, rows in results.items():
        for row in rows:
            print(name, row)


if __name__ == "__main__":
    main()
