"""Load benchmark of the HTTP service: ``GET /users/{id}`` and ``POST /assign``.

Starts ``usergroups serve`` on a free loopback port, warms it up, then sends a bounded
load from ``--concurrency`` keep-alive connections (a minimal asyncio HTTP/1.1 client, so
the load generator costs little of the CPU it shares with the server) and writes
``bench/results/service.json``::

    {"users": {"rps": ..., "p50_ms": ..., "p95_ms": ..., "p99_ms": ..., "errors": ...},
     "assign": {...}}

and the conditions of the run (load average, counts, model) to
``bench/results/service-run.json``. Latency is measured by the client, from writing the
request to reading the whole answer; an error is a transport failure or any status but
200.

Usage::

    usergroups discover --dataset amazon2014:musical-instruments --out runs/demo
    python bench/service.py --model runs/demo
"""

from __future__ import annotations

import argparse
import asyncio
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
    port: int, requests: list[tuple[str, str, bytes]], concurrency: int
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
    ms = np.array(latencies) * 1000.0
    return {
        "rps": round(len(requests) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": int(errors),
    }


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "demo"), help="model directory")
    parser.add_argument("--requests", type=int, default=20_000, help="GET /users requests")
    parser.add_argument("--assign-requests", type=int, default=2_000, help="POST /assign")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "service.json"))
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
    texts = assign_texts(model_dir, args.assign_requests + args.warmup, args.seed)
    assign_requests = [
        ("POST", "/assign", json.dumps({"texts": [t], "n": 10}).encode()) for t in texts
    ]

    work = Path(tempfile.mkdtemp(prefix="usergroups-bench-"))
    settings = work / "settings.toml"
    settings.write_text(
        "log_level = 'warning'\n[limits]\nrate_per_s = 1000000.0\nburst = 1000000\n"
        f"[events]\nurl = 'sqlite:///{work}/events.sqlite3'\n"
    )
    port = free_port()
    env = {**os.environ, "USERGROUPS_API_KEYS": f"bench:{KEY}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usergroups",
            "serve",
            str(model_dir),
            "--port",
            str(port),
            "--settings",
            str(settings),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "server.log", "wb"),  # noqa: SIM115
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print((work / "server.log").read_text()[-3000:])
                    return 1
                time.sleep(0.2)
        health = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
        )
        w = args.warmup
        asyncio.run(run_load(port, user_requests[:w], args.concurrency))
        asyncio.run(run_load(port, assign_requests[:w], args.concurrency))
        load_before = os.getloadavg()
        users_result = asyncio.run(run_load(port, user_requests[w:], args.concurrency))
        assign_result = asyncio.run(run_load(port, assign_requests[w:], args.concurrency))
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    result = {"users": users_result, "assign": assign_result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    run = {
        "requests": {"users": args.requests, "assign": args.assign_requests},
        "concurrency": args.concurrency,
        "warmup": args.warmup,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": {k: health["model"][k] for k in ("n_users", "n_items", "n_groups", "encoder")},
        "server": "one uvicorn process (uvloop, httptools), log level warning",
        "client": "asyncio HTTP/1.1 keep-alive connections on the same machine",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out.with_name("service-run.json").write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps({**result, "run": run}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
