"""Load benchmark of the HTTP service: ``GET /users/{id}`` and ``POST /assign``.

Starts ``usergroups serve`` on a free loopback port, warms it up, then sends a bounded
load from ``--concurrency`` keep-alive connections (a minimal asyncio HTTP/1.1 client, so
the load generator costs little of the CPU it shares with the server) and writes
``bench/results/service.json``::

    {"users": {"rps": ..., "p50_ms": ..., "p95_ms": ..., "p99_ms": ..., "errors": ...,
               "load_1m_before": ..., "load_1m_after": ...},
     "assign": {...},
     "workers": {"1": {"users": {...}, "assign": {...}, "processes": 1},
                 "auto": {...}}}

Each setting of ``--workers`` (default ``1,auto``: today's one process beside what the
machine allows) gets its own server in the same run, one after the other; the top-level
``users`` and ``assign`` are the last one's. The 1-minute load average is read before and
after each measured load (the machine may be shared). The conditions of the run (counts,
model) go to ``bench/results/service-run.json``. Latency is measured by the client, from
writing the request to reading the whole answer; an error is a transport failure or any
status but 200.

Usage::

    usergroups discover --dataset amazon2014:musical-instruments --out runs/demo
    python bench/service.py --model runs/demo
    python bench/service.py --workers 1 --assign-batch-size 1   # batching off
    python bench/service.py --workers 1 --compare before=/tmp/old/src,after=src

``--compare`` measures source trees against each other under the same load: one server per
tree (its ``PYTHONPATH``), all up at once, and the load sent to each in turn in short
bursts (``--bursts``, the order reversed every other burst), so drift in the machine's
load hits every side alike; each side's latencies are pooled over its bursts, and each
burst's p99 is kept too (``burst_p99_ms`` and their median: a moment when a shared
machine stalls a server shows in one burst, where the pooled p99 charges it to the whole
run). ``server_cpu_ms`` is the CPU every process of a side's server used per request
(from ``/proc``, Linux): what the code costs, less inflated by the machine's other work
than its latencies. Results go to ``bench/results/service-compare.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key-0123456789abcdef0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    body: bytes,
) -> int:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


async def run_load(
    port: int, requests: list[tuple[str, str, bytes]], concurrency: int, *, keep: bool = False
) -> dict[str, Any]:
    """Send every request once from ``concurrency`` connections; return the figures."""
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for method, path, body in queue:
                t0 = time.perf_counter()
                try:
                    status = await _request(reader, writer, method, path, body)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    if keep:  # the raw figures, pooled by the caller
        return {"latencies": latencies, "errors": int(errors), "wall_s": wall}
    ms = np.array(latencies) * 1000.0
    return {
        "rps": round(len(requests) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": int(errors),
    }


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process and its descendants have used: a server's
    cost per request, which the machine's other work inflates less than latency. None
    where ``/proc`` cannot tell (not Linux)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    todo, total, found = [pid], 0, False
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found = True
        total += int(fields[11]) + int(fields[12])
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return total / tick if found else None


def assign_texts(model_dir: Path, n: int, seed: int) -> list[str]:
    """Distinct short texts (no cache can answer them) from the groups' own keywords."""
    import pandas as pd

    groups = pd.read_parquet(model_dir / "groups.parquet")
    words = sorted({str(w) for kws in groups["keywords"] for w in list(kws)[:10]})
    templates = [
        "I need {} and {} for my {}",
        "looking for a good {} to go with my {} and {}",
        "my {} broke, any {} or {} you would recommend?",
        "{} {} {} for a beginner",
    ]
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        template = rng.choice(templates)
        out.add(template.format(*rng.sample(words, 3)) + f" #{len(out)}")
    return sorted(out, key=lambda _: rng.random())


def start_server(
    model_dir: Path, work: Path, workers: str, extra_settings: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``usergroups serve`` with ``--workers workers`` on a free port; wait for /health."""
    settings = work / f"settings-{workers}.toml"
    value = json.dumps(workers if workers == "auto" else int(workers))
    settings.write_text(
        f"log_level = 'warning'\nworkers = {value}\n{extra_settings}"
        "[limits]\nrate_per_s = 1000000.0\nburst = 1000000\n"
        f"[events]\nurl = 'sqlite:///{work}/events-{workers}.sqlite3'\n"
    )
    port = free_port()
    env = {**os.environ, "USERGROUPS_API_KEYS": f"bench:{KEY}"}
    log = work / f"server-{workers}.log"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "usergroups", "serve", str(model_dir)),
            *("--port", str(port), "--settings", str(settings)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    import urllib.request

    deadline = time.monotonic() + 600
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return server, port, log
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.terminate()
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.2)


def measure(
    port: int,
    user_requests: list[tuple[str, str, bytes]],
    assign_requests: list[tuple[str, str, bytes]],
    warmup: int,
    concurrency: int,
) -> dict[str, Any]:
    """Warm up, then /users and /assign each with the 1-minute load average around it."""
    out: dict[str, Any] = {}
    for name, requests in (("users", user_requests), ("assign", assign_requests)):
        asyncio.run(run_load(port, requests[:warmup], concurrency))
        before = os.getloadavg()[0]
        result = asyncio.run(run_load(port, requests[warmup:], concurrency))
        after = os.getloadavg()[0]
        out[name] = {**result, "load_1m_before": round(before, 2), "load_1m_after": round(after, 2)}
    return out


def compare(
    model_dir: Path,
    sources: dict[str, str],
    workers: str,
    user_requests: list[tuple[str, str, bytes]],
    texts: list[str],
    *,
    bursts: int,
    per_burst: int,
    concurrency: int,
    warmup: int,
) -> dict[str, Any]:
    """Each source tree's server under the same load, in alternating bursts (module doc)."""
    work = Path(tempfile.mkdtemp(prefix="usergroups-compare-"))
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    pythonpath = os.environ.get("PYTHONPATH")
    lat: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], int] = {}
    wall: dict[tuple[str, str], float] = {}
    cpu: dict[tuple[str, str], float | None] = {}
    burst_p99: dict[tuple[str, str], list[float]] = {}
    loads: list[float] = []
    text_iter = iter(texts)

    def assign_batch(k: int) -> list[tuple[str, str, bytes]]:
        return [
            ("POST", "/assign", json.dumps({"texts": [next(text_iter)], "n": 10}).encode())
            for _ in range(k)
        ]

    try:
        for name, src in sources.items():
            os.environ["PYTHONPATH"] = str(Path(src).resolve())
            (work / name).mkdir()
            server, port, _ = start_server(model_dir, work / name, workers, "")
            servers[name] = (server, port)
        for _, port in servers.values():
            asyncio.run(run_load(port, assign_batch(warmup), concurrency))
        for b in range(bursts):
            names = list(servers) if b % 2 == 0 else list(servers)[::-1]
            for name in names:
                port = servers[name][1]
                u0 = (b * per_burst * 5) % max(len(user_requests) - per_burst * 5, 1)
                for endpoint, requests in (
                    ("assign", assign_batch(per_burst)),
                    ("users", user_requests[u0 : u0 + per_burst * 5]),
                ):
                    before = tree_cpu_s(servers[name][0].pid)
                    got = asyncio.run(run_load(port, requests, concurrency, keep=True))
                    after = tree_cpu_s(servers[name][0].pid)
                    key = (name, endpoint)
                    used = None if before is None or after is None else after - before
                    spent = cpu.get(key, 0.0)
                    cpu[key] = None if used is None or spent is None else spent + used
                    lat.setdefault(key, []).extend(got["latencies"])
                    if got["latencies"]:
                        p99 = float(np.percentile(got["latencies"], 99)) * 1000.0
                        burst_p99.setdefault(key, []).append(round(p99, 1))
                    errors[key] = errors.get(key, 0) + got["errors"]
                    wall[key] = wall.get(key, 0.0) + got["wall_s"]
            loads.append(os.getloadavg()[0])
    finally:
        if pythonpath is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = pythonpath
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=60)
    sides: dict[str, Any] = {}
    for (name, endpoint), values in lat.items():
        ms = np.array(values) * 1000.0
        sides.setdefault(name, {})[endpoint] = {
            "requests": len(values),
            "rps": round(len(values) / wall[(name, endpoint)], 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors[(name, endpoint)],
            # the server's CPU (every process) per request: what the code costs, less
            # inflated by the machine's other work than the latencies are
            "server_cpu_ms": _per_request_ms(cpu.get((name, endpoint)), len(values)),
            # each burst's own p99: a moment when the shared machine stalls the server
            # shows in one burst, where the pooled p99 above takes it for the whole run
            "burst_p99_ms": burst_p99.get((name, endpoint), []),
            "burst_p99_median_ms": round(float(np.median(burst_p99[(name, endpoint)])), 1)
            if burst_p99.get((name, endpoint))
            else None,
        }
    return {
        "workers": workers,
        "sources": sources,
        "bursts": bursts,
        "assign_per_burst": per_burst,
        "users_per_burst": per_burst * 5,
        "concurrency": concurrency,
        "load_1m_min_max": [round(min(loads), 2), round(max(loads), 2)],
        "sides": sides,
    }


def _per_request_ms(seconds: float | None, n: int) -> float | None:
    return None if seconds is None or n == 0 else round(seconds / n * 1000.0, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "demo"), help="model directory")
    parser.add_argument("--requests", type=int, default=20_000, help="GET /users requests")
    parser.add_argument("--assign-requests", type=int, default=2_000, help="POST /assign")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers",
        default="1,auto",
        help="server settings to compare, in this order (the last is the headline figure)",
    )
    parser.add_argument(
        "--assign-batch-size",
        type=int,
        default=None,
        help="the server's assign_batch_size (default: the service's default); 1 turns "
        "batching off, to measure what it brings",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "service.json"))
    parser.add_argument(
        "--compare",
        default=None,
        help="NAME=SRC,NAME=SRC: source trees measured against each other in alternating "
        "bursts under the same load (the first --workers setting)",
    )
    parser.add_argument("--bursts", type=int, default=8, help="with --compare")
    parser.add_argument("--per-burst", type=int, default=150, help="/assign requests per burst")
    args = parser.parse_args()

    model_dir = Path(args.model)
    if not (model_dir / "arrays.npz").exists():
        print(f"no model in {model_dir}; run usergroups discover ... --out {model_dir}")
        return 1
    import pandas as pd

    users = pd.read_parquet(model_dir / "assignments.parquet")["user_id"].astype(str).tolist()
    rng = random.Random(args.seed)
    from urllib.parse import quote

    user_requests = [
        ("GET", f"/users/{quote(rng.choice(users), safe='')}?n=10", b"")
        for _ in range(args.requests + args.warmup)
    ]
    if args.compare:
        sources = dict(part.split("=", 1) for part in args.compare.split(","))
        n_texts = (args.bursts * args.per_burst + args.warmup) * len(sources)
        result = compare(
            model_dir,
            sources,
            args.workers.split(",")[0].strip(),
            user_requests,
            assign_texts(model_dir, n_texts, args.seed),
            bursts=args.bursts,
            per_burst=args.per_burst,
            concurrency=args.concurrency,
            warmup=args.warmup,
        )
        result["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        result["cpus"] = os.cpu_count()
        out = ROOT / "bench" / "results" / "service-compare.json"
        previous = json.loads(out.read_text()) if out.exists() else {}
        previous[f"workers={result['workers']}"] = result
        out.write_text(json.dumps(previous, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    texts = assign_texts(model_dir, 2 * args.assign_requests + 2 * args.warmup, args.seed)
    extra = (
        f"assign_batch_size = {args.assign_batch_size}\n"
        if args.assign_batch_size is not None
        else ""
    )
    work = Path(tempfile.mkdtemp(prefix="usergroups-bench-"))
    runs: dict[str, Any] = {}
    health: dict[str, Any] = {}
    for i, workers in enumerate(w.strip() for w in args.workers.split(",")):
        # each run its own texts: an encoder cache (if any) answers none of them
        chunk = texts[i % 2 :: 2]
        assign_requests = [
            ("POST", "/assign", json.dumps({"texts": [t], "n": 10}).encode()) for t in chunk
        ]
        server, port, _ = start_server(model_dir, work, workers, extra)
        try:
            import urllib.request

            health = json.loads(
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
            )
            result = measure(port, user_requests, assign_requests, args.warmup, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=60)
        result["processes"] = int(health.get("workers", {}).get("count", 1))
        runs[workers] = result
        print(workers, json.dumps(result), flush=True)
    headline = runs[list(runs)[-1]]
    result_out = {
        "users": {k: v for k, v in headline["users"].items()},
        "assign": {k: v for k, v in headline["assign"].items()},
        "workers": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result_out, indent=2) + "\n")
    run = {
        "requests": {"users": args.requests, "assign": args.assign_requests},
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "workers_compared": list(runs),
        "assign_batch_size": args.assign_batch_size or "default",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": {k: health["model"][k] for k in ("n_users", "n_items", "n_groups", "encoder")},
        "server": "uvicorn (uvloop, httptools), log level warning; headline: the last of "
        + ", ".join(f"workers={w}" for w in runs),
        "client": "asyncio HTTP/1.1 keep-alive connections on the same machine",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out.with_name("service-run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps({**result_out, "run": run}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
