"""Before/after figures of issue 16's memory bounds, each in a fresh subprocess.

- ``ease``: the EASE solve at ``--ease-items`` items, the old ``np.linalg.inv`` path (three
  dense matrices) beside :func:`usergroups.linalg.ease_weights` (one, Cholesky in place).
- ``save``: every user's top-10 of a model directory, the old one-call path
  (``GroupDiscovery.recommend(all users)``) beside ``recommend_all`` (batches).

    python bench/memory.py --model-dir runs/m --ease-items 6000

Peak resident memory is ``ru_maxrss`` of the subprocess, after the imports and the load.
Results are merged into bench/results/scale.json under ``before_after``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"

EASE = r"""
import json, resource, sys, time
import numpy as np, scipy.sparse as sp
from usergroups.linalg import ease_weights
n_items, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
n_users, nnz = 10 * n_items, 200 * n_items
x = sp.csr_matrix((np.ones(nnz, np.float32), (rng.integers(0, n_users, nnz),
                   rng.integers(0, n_items, nnz))), shape=(n_users, n_items))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
if path == "old":
    b = sp.csr_matrix(x, dtype=np.float64); b.data[:] = 1
    g = (b.T @ b).toarray(); g[np.diag_indices(n_items)] += 250.0
    p = np.linalg.inv(g); w = p / (-np.diag(p))[None, :]; w[np.diag_indices(n_items)] = 0
else:
    w = ease_weights(x, 250.0)
print(json.dumps({"seconds": round(time.perf_counter() - t, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "before_mb": round(base)}))
"""

SAVE = r"""
import json, resource, sys, time
from usergroups import GroupDiscovery
model, path = GroupDiscovery.load(sys.argv[1]), sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
if path == "old":
    recs = model.recommend(model.user_ids_.ids.tolist(), n=10)
else:
    recs = model.recommend_all(10)
print(json.dumps({"seconds": round(time.perf_counter() - t, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "before_mb": round(base), "rows": len(recs),
                  "n_users": len(model.user_ids_), "n_items": len(model.item_ids_),
                  "personal": type(model.personal_).__name__,
                  "personal_weight": model.personal_weight_}))
"""


def _run(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", action="append", default=[], help="repeatable")
    parser.add_argument("--ease-items", type=int, default=6000)
    args = parser.parse_args()
    found: dict[str, object] = {"command": "python bench/memory.py " + " ".join(sys.argv[1:])}
    found["ease"] = {p: _run(EASE, str(args.ease_items), p) for p in ("old", "new")}
    found["save"] = [{p: _run(SAVE, d, p) for p in ("old", "new")} for d in args.model_dir]
    found["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(found, indent=1))
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    data["before_after"] = found
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
