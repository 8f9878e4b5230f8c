"""Two source trees' answers on the same users, paired: is a change real or noise?

The issue targets "not below today" (new users' NDCG@10, Hybrid's) compare this code with
the code of an earlier day. Two benchmark runs of different days differ in their machine,
their load and, when the data loading changed, even their test users; their bootstrap
intervals are too wide (±30 % at 80 test users) to tell a 3 % change from noise. This
script fits each tree on the same split of the same data and scores the same test users,
then measures every tree with *this* tree's evaluator:

- warm: what ``recommend`` ranks for a known user (the protocol's ``Hybrid`` scorer of each
  tree, the group part blended with the personal model as that tree chose);
- cold: what ``assign`` recommends for a new user known by one review
  (``GroupDiscovery.text_scores``).

Each tree runs in its own interpreter (``PYTHONPATH=TREE``) with ``DiscoveryConfig()``
defaults and writes its scores; the trees must agree on the test users and the items (it
stops otherwise). The result is, per dataset and protocol, each tree's NDCG@10 and its
ratio to Pop's with a paired 95 % bootstrap interval, and the last tree ÷ the first with
its paired interval: a change is *real* only when that interval excludes 1.

    git worktree add --detach /tmp/start <commit of the round's start>
    python bench/versions.py --compare start=/tmp/start/src,now=src \\
        --datasets douban-small,yelp-10k,amazon2014:musical-instruments

Results go to ``bench/results/versions.json``; ``bench/run.py`` renders them into
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "versions.json"
PROTOCOLS = ("warm", "cold")
MIN_TEST_USERS = 50
"""Fewer test users than this and a protocol's figures are noise: skipped, as
``evaluate_discovery``'s ``min_test_users`` does."""
logger = logging.getLogger("bench.versions")


def worker(name: str, data_dir: str | None, out: Path) -> None:
    """In the tree on ``PYTHONPATH``: fit on each split's training part and save the
    scores of its test users (``<protocol>.npy``) with their user and item ids."""
    from usergroups import DiscoveryConfig, GroupDiscovery
    from usergroups.datasets import load_dataset
    from usergroups.errors import DataError
    from usergroups.evaluation import protocols
    from usergroups.evaluation.splits import cold_split, warm_split

    dataset = load_dataset(name, data_dir=data_dir)
    meta: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        if protocol == "cold" and len(dataset.texts) == 0:
            continue
        try:
            split = warm_split(dataset) if protocol == "warm" else cold_split(dataset)
        except DataError as exc:  # e.g. too few users with two texts for the cold split
            meta[f"{protocol}_skipped"] = str(exc)
            continue
        fitted = GroupDiscovery(DiscoveryConfig()).fit(split.train_dataset())
        rows = np.arange(split.n_test_users)
        if protocol == "warm":
            scores = protocols._warm_hybrid_scorer(split, fitted)(rows)
        else:
            assert split.query_texts is not None
            raw = fitted.text_scores([str(q) for q in split.query_texts])
            scores = split.align_item_scores(raw, fitted.item_ids_.ids)
        np.save(out / f"{protocol}.npy", np.asarray(scores, dtype=np.float32))
        meta[protocol] = {
            "users": [str(u) for u in dataset.user_ids.ids[split.test_users]],
            "items": _digest(dataset.item_ids.ids),
        }
    (out / "meta.json").write_text(json.dumps(meta))


def _run_tree(tree: Path, name: str, data_dir: str | None, out: Path) -> float:
    """``worker`` in a fresh interpreter on ``tree``; returns its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--worker-dir",
        str(out),
    ]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - t


def measure(name: str, trees: dict[str, Path], data_dir: str | None) -> dict[str, Any]:
    """Every tree's scores on ``name``'s splits, measured with this tree's evaluator."""
    from usergroups.datasets import load_dataset

    dataset = load_dataset(name, data_dir=data_dir)
    work = Path(tempfile.mkdtemp(prefix="usergroups-versions-"))
    try:
        return _measure_in(work, name, dataset, trees, data_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure_in(
    work: Path, name: str, dataset: Any, trees: dict[str, Path], data_dir: str | None
) -> dict[str, Any]:
    from usergroups.evaluation import PopularityRecommender
    from usergroups.evaluation.lift import ratio_interval
    from usergroups.evaluation.splits import cold_split, warm_split

    seconds = {}
    for label, tree in trees.items():
        (work / label).mkdir()
        seconds[label] = round(_run_tree(tree, name, data_dir, work / label), 1)
    result: dict[str, Any] = {"dataset": name, "seconds": seconds}
    for protocol in PROTOCOLS:
        metas = {label: json.loads((work / label / "meta.json").read_text()) for label in trees}
        if not all(protocol in m for m in metas.values()):
            reasons = {m.get(f"{protocol}_skipped") for m in metas.values()} - {None}
            if reasons:
                result[f"{protocol}_skipped"] = "; ".join(sorted(reasons))
            continue
        split = warm_split(dataset) if protocol == "warm" else cold_split(dataset)
        users = [str(u) for u in dataset.user_ids.ids[split.test_users]]
        items = _digest(dataset.item_ids.ids)
        for label, meta in metas.items():
            if meta[protocol]["users"] != users or meta[protocol]["items"] != items:
                raise SystemExit(
                    f"{name} {protocol}: tree {label!r} split the data differently (other "
                    "test users or items): its figures cannot be paired with this tree's"
                )

        pop_scores = PopularityRecommender().fit(split.train).score(split.test_users)
        pop = _per_user(pop_scores, split)
        if len(pop) < MIN_TEST_USERS:
            result[f"{protocol}_skipped"] = _too_few(len(pop))
            continue
        ndcg = {
            label: _per_user(np.load(work / label / f"{protocol}.npy"), split) for label in trees
        }
        labels = list(trees)
        first, last = ndcg[labels[0]], ndcg[labels[-1]]
        change = _rounded(ratio_interval(last, first, random_state=0))
        change["verdict"] = _verdict(change)
        result[protocol] = {
            "n_test_users": len(pop),
            "Pop": round(float(pop.mean()), 4),
            "trees": {
                label: {
                    "NDCG@10": round(float(v.mean()), 4),
                    "÷ Pop": _rounded(ratio_interval(v, pop, random_state=0)),
                }
                for label, v in ndcg.items()
            },
            f"{labels[-1]} ÷ {labels[0]}": change,
        }
    return result


def _digest(ids: Any) -> str:
    """The item vocabulary, in order, as one SHA-256 (the score columns must agree)."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def _per_user(scores: Any, split: Any) -> np.ndarray:
    """NDCG@10 of each of ``split``'s test users (rows of ``scores``), this tree's evaluator."""
    from usergroups.evaluation.evaluate import evaluate_scores

    values: dict[str, np.ndarray] = {}
    evaluate_scores(lambda rows: scores[rows], split, (10,), per_user=values)
    return values["NDCG@10"]


def _rounded(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: round(float(entry[k]), 4) for k in ("value", "low", "high")}


def _too_few(n: int) -> str:
    return f"only {n} test users (< {MIN_TEST_USERS}): the figures would be noise"


def _verdict(interval: dict[str, float]) -> str:
    """real / noise / identical / undefined (:func:`usergroups.evaluation.lift.ratio_verdict`)."""
    from usergroups.evaluation.lift import ratio_verdict

    return ratio_verdict(interval)


def render_markdown(data: dict[str, Any]) -> str:
    """The section of ``docs/benchmarks.md`` for ``versions.json``."""
    labels = list(data["trees"])
    first, last = labels[0], labels[-1]
    lines = [
        "## The same users, two source trees",
        "",
        "Each tree fitted with its defaults on the same split and scored on the same test users, "
        "measured with one evaluator (`bench/versions.py`): warm = what `recommend` ranks "
        "(`Hybrid`), cold = what `assign` recommends for a new user. Ratios carry their paired "
        "95 % bootstrap interval; a change is real only when its interval excludes 1.",
        "",
        f"- Command: `{data['command']}`",
        "- Trees: " + ", ".join(f"`{k}` = {v}" for k, v in data["trees"].items()),
        f"- Date: {data['date']}; machine: {data['machine']}",
        "",
        f"| dataset | protocol | test users | Pop | {first} (÷ Pop) | {last} (÷ Pop) | "
        f"{last} ÷ {first} | |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(entry: dict[str, Any]) -> str:
        r = entry["÷ Pop"]
        return f"{entry['NDCG@10']:.4f} ({r['value']:.2f}×, {r['low']:.2f}–{r['high']:.2f})"

    skipped = []
    for r in data["results"]:
        for protocol in PROTOCOLS:
            section = r.get(protocol)
            if section and section["n_test_users"] < MIN_TEST_USERS:
                section = None  # a result written before the rule: shown as skipped
                skipped.append(
                    f"{r['dataset']} {protocol}: {_too_few(r[protocol]['n_test_users'])}"
                )
            elif r.get(f"{protocol}_skipped"):
                skipped.append(f"{r['dataset']} {protocol}: {r[f'{protocol}_skipped']}")
            if not section:
                continue
            change = section[f"{last} ÷ {first}"]
            lines.append(
                f"| {r['dataset']} | {protocol} | {section['n_test_users']:,} | "
                f"{section['Pop']:.4f} | {cell(section['trees'][first])} | "
                f"{cell(section['trees'][last])} | {change['value']:.3f} "
                f"({change['low']:.3f}–{change['high']:.3f}) | {_verdict(change)} |"
            )
    if skipped:
        lines += ["", "Not compared: " + "; ".join(skipped) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", help="LABEL=TREE,LABEL=TREE (a tree is a src directory)")
    parser.add_argument(
        "--datasets", default="douban-small,yelp-10k,amazon2014:musical-instruments"
    )
    parser.add_argument("--data-dir", default=os.environ.get("USERGROUPS_DATA"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.worker:
        worker(args.worker, args.data_dir, args.worker_dir)
        return 0
    if not args.compare:
        parser.error("--compare LABEL=TREE,LABEL=TREE is required")
    try:
        trees = {
            k: Path(v).resolve() for k, v in (p.split("=", 1) for p in args.compare.split(","))
        }
    except ValueError:
        parser.error(f"--compare {args.compare!r}: expected LABEL=TREE,LABEL=TREE")
    missing = [str(t) for t in trees.values() if not (t / "usergroups" / "__init__.py").exists()]
    if len(trees) < 2 or missing:
        parser.error(f"--compare needs two or more src trees holding usergroups/ (not: {missing})")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import machine  # the machine line of every bench result

    results = [measure(name, trees, args.data_dir) for name in args.datasets.split(",")]
    data = {
        "command": "python bench/versions.py " + " ".join(argv or sys.argv[1:]),
        "trees": {k: str(v) for k, v in trees.items()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "results": results,
    }
    from usergroups.persistence.atomic import atomic_write_bytes

    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, json.dumps(data, indent=1, ensure_ascii=False).encode())
    print(render_markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
