"""Do a group's keywords survive counting them on a sample of its writers? (issue 25)

Profiles count a group's keywords on a seeded sample of ``keyword_writers`` writers when it
has more (:data:`usergroups.profiling.profiles.KEYWORD_WRITERS`, 10,000). The shared
datasets have fewer writers per group than that, so the default never samples them; this
script samples them harder: each group's keywords counted on ``--share`` of its writers
(default a half) against all of them, on groups from k-means (8 groups) of the users'
hashed text and behaviour vectors, and reports how many of each group's top-10 keywords
agree, for several seeds.

    python bench/keyword_sample.py                      # every shared dataset with texts
    python bench/keyword_sample.py --share 0.25

Results: bench/results/keyword_sample.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from usergroups.datasets import load_dataset
from usergroups.embedding import HashingEncoder
from usergroups.fusion import UserVectorBuilder
from usergroups.profiling import build_profiles

ROOT = Path(__file__).resolve().parent
DATASETS = (
    "amazon2014:musical-instruments",
    "yelp-10k",
    "douban-small",
    "amazon2018:appliances",
)


def agreement(name: str, share: float, seeds: int, n_groups: int = 8) -> dict[str, object]:
    from sklearn.cluster import KMeans

    ds = load_dataset(name)
    vectors = HashingEncoder(dim=256).encode(ds.texts["text"].tolist())
    users = UserVectorBuilder(n_components=16, random_state=0).fit(ds, vectors).vectors_
    labels = KMeans(n_groups, n_init=3, random_state=0).fit_predict(users)
    writers = np.bincount(
        labels[ds.user_ids.index(ds.texts["user_id"].unique())], minlength=n_groups
    )
    full = build_profiles(ds, labels, n_keywords=10, keyword_writers=None)
    cap = max(1, int(share * writers.max()))
    rows = []
    for seed in range(seeds):
        sampled = build_profiles(ds, labels, n_keywords=10, keyword_writers=cap, random_state=seed)
        for f, s in zip(full, sampled, strict=True):
            if writers[f.group_id] <= cap or not f.keywords:
                continue  # counted in full: nothing to compare
            rows.append(
                {
                    "seed": seed,
                    "group_id": f.group_id,
                    "writers": int(writers[f.group_id]),
                    "sampled": cap,
                    "same_top10": len(set(f.keywords) & set(s.keywords)),
                    "same_top3": len(set(f.keywords[:3]) & set(s.keywords[:3])),
                    "same_label": f.label == s.label,
                }
            )
    same = [r["same_top10"] for r in rows]
    return {
        "dataset": name,
        "n_users": ds.n_users,
        "writers_per_group": writers.tolist(),
        "keyword_writers": cap,
        "share": share,
        "groups_compared": len(rows),
        "mean_same_top10": round(float(np.mean(same)), 2) if same else None,
        "min_same_top10": int(min(same)) if same else None,
        "same_top3_mean": round(float(np.mean([r["same_top3"] for r in rows])), 2)
        if rows
        else None,
        "same_label_share": round(float(np.mean([r["same_label"] for r in rows])), 3)
        if rows
        else None,
        "groups": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "keyword_sample.json")
    args = parser.parse_args()
    results = []
    for name in args.datasets:
        try:
            result = agreement(name, args.share, args.seeds)
        except FileNotFoundError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        print(json.dumps({k: v for k, v in result.items() if k != "groups"}), flush=True)
        results.append(result)
    record = {
        "command": "python bench/keyword_sample.py " + " ".join(sys.argv[1:]),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "results": results,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
