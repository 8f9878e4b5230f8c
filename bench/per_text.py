"""The int8 encoder batched against one text per call (issue 22): speed and determinism.

Writes bench/results/per_text-<threads>threads.json.

    python bench/per_text.py                 # 300 reviews, 1 thread
    python bench/per_text.py --n 600 --threads 2

Both encoders run in one process on the same real Amazon Musical Instruments reviews, in
interleaved rounds (each round: all texts batched, then all per text, as ``encode`` gets
them at fit time: sorted by length, batches of 32), so the ratio shares the machine's
conditions; on a shared machine quote the ratio, not the absolute figures.

Measured for each: texts/s, and how much a text's vector depends on its neighbours (the
lowest cosine and the largest absolute difference between a text embedded alone and the
same text embedded among all the others). Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    from embed import machine, review_texts
    from results_io import write_results

    from usergroups.embedding.onnx import OnnxEncoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="reviews embedded (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--n-alone", type=int, default=60, help="texts also embedded alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    texts = review_texts(args.n)
    encoders = {
        "batched (before)": OnnxEncoder(quantize=True, per_text=False, n_threads=args.threads),
        "per-text (after)": OnnxEncoder(quantize=True, per_text=True, n_threads=args.threads),
    }
    for enc in encoders.values():
        enc.encode(texts[:32])  # load, int8 check, warm-up
    seconds = dict.fromkeys(encoders, 0.0)
    together: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for key, enc in encoders.items():
            start = time.perf_counter()
            together[key] = enc.encode(texts)
            seconds[key] += time.perf_counter() - start
    runs: dict[str, Any] = {}
    for key, enc in encoders.items():
        among = together[key][: args.n_alone]
        alone = np.vstack([enc.encode([t]) for t in texts[: args.n_alone]])
        cos = np.sum(among * alone, axis=1) / (
            np.linalg.norm(among, axis=1) * np.linalg.norm(alone, axis=1)
        )
        runs[key] = {
            "encoder": enc.name,
            "texts_per_s": round(args.rounds * len(texts) / seconds[key], 1),
            "seconds": round(seconds[key], 2),
            "alone_vs_batched_min_cosine": round(float(cos.min()), 6),
            "alone_vs_batched_max_abs_diff": float(np.abs(among - alone).max()),
            "int8_check": {k: enc.int8_check_[k] for k in ("recipe", "mean_cosine", "min_cosine")},
        }
    before, after = (runs[k]["texts_per_s"] for k in encoders)
    summary = {
        "machine": machine(),
        "n_texts": len(texts),
        "threads": args.threads,
        "rounds": args.rounds,
        "batch_size": 32,
        "speed_ratio_after_over_before": round(after / before, 3),
        "encoders": runs,
    }
    path = RESULTS / f"per_text-{args.threads}threads.json"
    payload = write_results(path, "per_text.py", argv, summary)
    for key, run in runs.items():
        print(
            f"{key:18s} {run['texts_per_s']:7.1f} texts/s  alone vs batched: min cosine "
            f"{run['alone_vs_batched_min_cosine']:.6f}, max |diff| "
            f"{run['alone_vs_batched_max_abs_diff']:.2e}"
        )
    print(f"per-text / batched speed: {summary['speed_ratio_after_over_before']:.3f}")
    return 0 if payload else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
