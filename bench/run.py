"""Run the benchmark of issue 3 on every shared dataset and regenerate docs/benchmarks.md.

    python bench/run.py                       # every dataset that is present (make bench)
    python bench/run.py --datasets ml-100k    # one dataset; the docs still cover all results
    python bench/run.py --quick               # Pop/ItemKNN/EASE, 2 seeds, 3 K values
    python bench/run.py --docs-only           # re-render docs/benchmarks.md from the JSONs

Writes ``<out>/<dataset>.json`` (atomically) and ``<out>/<dataset>.png`` (group lift and
NDCG@10 against the number of groups) per dataset, ``<out>/_bench.json`` (the run: command,
machine, date, wall time) and ``docs/benchmarks.md`` from *all* result JSONs in ``<out>``.
Data come from ``$USERGROUPS_DATA`` (the Makefile points it at ../shared/datasets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (
    "ml-100k",
    "ml-latest-small",
    "amazon2014:musical-instruments",
    "yelp-10k",
    "douban-small",
    "amazon2018:appliances",  # 47 users: a format check, its figures are noise
)
QUICK_DATASETS = ("ml-100k", "amazon2014:musical-instruments")
RUN_FILE = "_bench.json"

logger = logging.getLogger("bench")


def machine() -> str:
    """CPU model, cores and RAM from /proc (Linux), else what platform knows."""
    cpu = platform.processor() or platform.machine()
    ram = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f", {int(line.split()[1]) / 1024**2:.0f} GiB RAM"
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f} at start (shared machine)"
    return f"{cpu}, {os.cpu_count()} cores{ram}, Python {platform.python_version()}{load}"


def write_json(path: Path, data: dict[str, Any]) -> None:
    from usergroups.persistence.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    path.chmod(0o644)  # the temporary file it was renamed from is private


def plot(result: dict[str, Any], path: Path) -> bool:
    """Group lift and NDCG@10 against the number of groups; False when there is no sweep."""
    from usergroups.report.benchmark import sweep_rows

    sweep = sweep_rows(result)
    if not sweep:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def column(key: str) -> list[float]:
        return [float("nan") if s.get(key) is None else s[key] for s in sweep]

    ks = [s["k"] for s in sweep]
    fig, (ax_lift, ax_ndcg) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax_lift.plot(ks, column("UserGroups_group_lift"), "o-", label="UserGroups (as configured)")
    ax_lift.plot(ks, column("SeedRecipe_group_lift"), "s--", label="SeedRecipe")
    ax_lift.axhline(1.0, color="grey", lw=1, ls=":", label="global popularity")
    ax_lift.set_xlabel("number of groups (K asked)")
    ax_lift.set_ylabel("group lift (NDCG@10 ÷ Pop)")
    ax_lift.set_title("group lift, warm split")
    ax_ndcg.plot(ks, column("UserGroups_NDCG@10"), "o-", label="UserGroups")
    ax_ndcg.plot(ks, column("SeedRecipe_NDCG@10"), "s--", label="SeedRecipe")
    for name, style in (("Pop", ":"), ("EASE", "-."), ("ItemKNN", "--")):
        if name in result["methods"]:
            ax_ndcg.axhline(
                result["methods"][name]["NDCG@10"], ls=style, lw=1, color="grey", label=name
            )
    ax_ndcg.set_xlabel("number of groups (K asked)")
    ax_ndcg.set_ylabel("NDCG@10")
    ax_ndcg.set_title("NDCG@10, warm split")
    chosen = result.get("groups", {}).get("n_groups")
    for ax in (ax_lift, ax_ndcg):
        if chosen:
            ax.axvline(chosen, color="tab:red", lw=1, alpha=0.5, label=f"auto K = {chosen}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{result['dataset']}: number of groups")
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def load_results(out: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted(out.glob("*.json")):
        if path.name.startswith("_"):
            continue
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "dataset" in data:
            results.append(data)
    return results


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_service(out: Path) -> str:
    """The HTTP service's load benchmark (bench/results/service.json)."""
    data = json.loads((out / "service.json").read_text())
    run_file = out / "service-run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    targets = {"users": "p99 ≤ 20 ms", "assign": "p99 ≤ 100 ms"}
    # one row per endpoint and worker count when the run compared them (bench/service.py)
    runs = data.get("workers") or {"": {k: data[k] for k in targets if k in data}}
    rows = [
        [
            f"`{name}`",
            workers or "–",
            f"{v.get('rps', 0):.1f}",
            f"{v.get('p50_ms', 0):.1f}",
            f"{v.get('p95_ms', 0):.1f}",
            f"{v.get('p99_ms', 0):.1f}",
            str(v.get("errors", 0)),
            f"{v['load_1m_before']:.1f} → {v['load_1m_after']:.1f}"
            if "load_1m_before" in v
            else "–",
            target,
        ]
        for name, target in targets.items()
        for workers, figures in runs.items()
        if (v := figures.get(name))
    ]
    notes = ", ".join(f"{k}: {v}" for k, v in run.items() if not isinstance(v, dict | list))
    if (run.get("model") or {}).get("encoder"):
        notes += f", encoder: `{run['model']['encoder']}`"
    return "\n".join(
        [
            "## HTTP service (bench/service.py)",
            "",
            "Command: `python bench/service.py` (a real uvicorn server on loopback, "
            "bounded load). " + (f"Run: {notes}." if notes else ""),
            "",
            _table(
                [
                    "endpoint",
                    "workers",
                    "req/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "errors",
                    "load (1 min)",
                    "target",
                ],
                rows,
            ),
        ]
    )


def render_scale(data: dict[str, Any]) -> str:
    """Local and Spark engines on generated data (bench/results/scale.json)."""
    rows = [
        [
            str(r.get("engine")),
            f"{r.get('n_interactions', 0):,}",
            f"{r.get('n_users', 0):,}",
            f"{r['seconds']:.1f}" if r.get("seconds") is not None else "–",
            f"{r['peak_rss_mb']:,}" if r.get("peak_rss_mb") is not None else "–",
            str(r.get("embedding", "")),
            str(r.get("encoder", "")),
            str(r.get("status", "")),
        ]
        for r in data.get("runs", [])
    ]
    return "\n".join(
        [
            "## Scale: local and Spark engines (bench/scale.py)",
            "",
            "Command: `python bench/scale.py` (generated data; Spark in `local[2]`).",
            "",
            _table(
                [
                    "engine",
                    "interactions",
                    "users",
                    "seconds",
                    "peak RSS MB",
                    "embedding",
                    "encoder",
                    "status",
                ],
                rows,
            ),
        ]
    )


def write_docs(out: Path, docs: Path) -> None:
    from usergroups.report.benchmark import dataset_slug, render_markdown

    results = load_results(out)
    run_path = out / RUN_FILE
    run = json.loads(run_path.read_text()) if run_path.exists() else {}
    plots = {}
    for r in results:
        png = out / f"{dataset_slug(str(r['dataset']))}.png"
        if png.exists():
            plots[str(r["dataset"])] = os.path.relpath(png, docs.parent)
    text = render_markdown(
        results,
        command=run.get("command", "make bench"),
        machine=run.get("machine"),
        date=run.get("date"),
        wall_seconds=run.get("wall_seconds"),
        plots=plots,
    )
    # sections rendered by the benchmark scripts beside this one, from their JSONs:
    # embed.py (issue 8), ablation.py and finetune.py (issue 15), demo.py and truncation.py
    # (issue 16), versions.py (issue 23: two source trees on the same users)
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for script in ("demo", "truncation", "embed", "ablation", "finetune", "versions"):
        path = out / f"{script}.json"
        if path.exists():
            render = importlib.import_module(script).render_markdown
            text = text.rstrip() + "\n\n" + render(json.loads(path.read_text())) + "\n"
    service = out / "service.json"
    if service.exists():  # issue 6: bench/service.py
        text = text.rstrip() + "\n\n" + render_service(out) + "\n"
    scale = out / "scale.json"
    if scale.exists():  # issue 7: bench/scale.py
        text = text.rstrip() + "\n\n" + render_scale(json.loads(scale.read_text())) + "\n"
    from usergroups.persistence.atomic import atomic_write_bytes

    atomic_write_bytes(docs, text.encode())
    docs.chmod(0o644)
    logger.info("wrote %s (%d datasets)", docs, len(results))


def overrides(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=torch"]`` as config overrides; the fit cache is off (every fit timed)."""
    out: dict[str, Any] = {"reuse": False}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE, e.g. embedding.backend=torch")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def run_dataset(name: str, args: argparse.Namespace, encoder: Any, meta: dict[str, Any]) -> None:
    from usergroups import DiscoveryConfig
    from usergroups.datasets import load_dataset
    from usergroups.errors import DataError, DatasetNotFoundError
    from usergroups.evaluation.protocols import DEFAULT_BASELINES, K_SWEEP
    from usergroups.report.benchmark import dataset_slug, evaluate_discovery

    out: Path = args.out
    slug = dataset_slug(name)
    try:
        dataset = load_dataset(name, data_dir=args.data_dir)
    except DatasetNotFoundError as exc:
        logger.warning("%s: not present, left out (%s)", name, exc)
        return
    logger.info("%s: %r", name, dataset)
    t = time.perf_counter()
    try:
        result = evaluate_discovery(
            dataset,
            DiscoveryConfig().with_overrides(overrides(args.set)),
            baselines=("Pop", "ItemKNN", "EASE") if args.quick else DEFAULT_BASELINES,
            stability_seeds=2 if args.quick else 5,
            k_sweep=(2, 8, 16) if args.quick else K_SWEEP,
            encoder=encoder,
        )
    except DataError as exc:
        logger.warning("%s: skipped: %s", name, exc)
        result = {"dataset": name, "skipped": str(exc)}
    result["run"] = {**meta, "quick": bool(args.quick), "seconds": time.perf_counter() - t}
    write_json(out / f"{slug}.json", result)
    if plot(result, out / f"{slug}.png"):
        logger.info("%s: wrote %s", name, out / f"{slug}.png")
    logger.info("%s: done in %.0f s", name, time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=None, help=f"default: {DATASETS}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--data-dir", default=None, help="default: $USERGROUPS_DATA")
    parser.add_argument("--quick", action="store_true", help="fewer baselines, seeds and K")
    parser.add_argument("--docs-only", action="store_true", help="only re-render the docs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a configuration override, e.g. embedding.backend=torch (JSON values); "
        "reuse=false is always set so that every fit is timed in full",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("sentence_transformers", "transformers", "jieba", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.docs_only:
        write_docs(args.out, args.docs)
        return 0

    started = time.perf_counter()
    command = " ".join(["python bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    meta = {
        "command": command,
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    names = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)
    # embedding.model='auto': evaluate_discovery picks each dataset's encoder by its language
    encoder = None
    write_json(args.out / RUN_FILE, {**meta, "datasets": list(names), "wall_seconds": None})
    for name in names:
        run_dataset(name, args, encoder, meta)
        write_docs(args.out, args.docs)
    wall = time.perf_counter() - started
    write_json(args.out / RUN_FILE, {**meta, "datasets": list(names), "wall_seconds": wall})
    write_docs(args.out, args.docs)
    print(f"bench: {len(names)} dataset(s) in {wall / 60:.1f} min; see {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
