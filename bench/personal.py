"""EASE vs item-kNN as the personal model, on the validation carve (issue 16).

NDCG@10 of the held-out item of the carve's warm validation users (the carve of
``usergroups.selection``), for the personal model alone and blended with global popularity
at its best (weight, shrinkage) of the selection grids; Amazon MI and ML-100K. Decides
``recommend.personal = "auto"``: EASE wherever it fits (``recommend.ease_max_items``).

    python bench/personal.py        # writes bench/results/personal.json
"""

import json
import time
from pathlib import Path

import numpy as np

from usergroups.datasets import load_dataset
from usergroups.ranking import ndcg_rows
from usergroups.recommend.hybrid import ItemKNN, PrunedEASE, blend, personal_weights
from usergroups.selection import BLEND_GRID, SHRINKAGE_GRID, carve_validation

RESULTS = Path(__file__).resolve().parent / "results" / "personal.json"

out = {}
for name in ("amazon2014:musical-instruments", "ml-100k"):
    ds = load_dataset(name)
    carve = carve_validation(ds, random_state=0)
    rows = carve.warm_rows
    held = carve.held_out[rows]
    seen = carve.x_train[rows]
    # global popularity stands in for the group part (the blend is chosen per model)
    pop = np.asarray(carve.x_train.sum(axis=0), dtype=np.float32).repeat(len(rows), 0)
    res = {"n_items": ds.n_items, "warm_users": len(rows)}
    models = {"ease (keep 1024)": lambda: PrunedEASE(l2=250.0, keep=1024)}
    for k in (20, 50, 100, 200):
        models[f"itemknn k={k}"] = lambda k=k: ItemKNN(n_neighbors=k)
    for label, make in models.items():
        t = time.perf_counter()
        m = make().fit(carve.x_train)
        fit_s = time.perf_counter() - t
        p = m.scores(seen)
        alone = ndcg_rows(p, held, seen)
        best = max(
            (float(ndcg_rows(blend(pop, p, personal_weights(seen, a, c)), held, seen).mean()), a, c)
            for a in BLEND_GRID
            for c in SHRINKAGE_GRID
        )
        se = float(alone.std(ddof=1) / np.sqrt(len(alone)))
        res[label] = {
            "alone": round(float(alone.mean()), 4),
            "alone_se": round(se, 4),
            "blend_with_pop": round(best[0], 4),
            "weight": best[1],
            "shrinkage": best[2],
            "fit_s": round(fit_s, 2),
            "weights_nnz": int(m.weights_.nnz),
        }
        print(name, label, res[label], flush=True)
    out[name] = res
RESULTS.write_text(json.dumps(out, indent=1) + "\n")
