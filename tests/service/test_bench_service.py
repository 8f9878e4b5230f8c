"""bench/service.py's server CPU per request: every process of the server counts (issue 25)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "service.py"


def _bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_service", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tree_cpu_counts_the_cpu_of_a_servers_child_processes() -> None:
    """A server with workers = auto is a supervisor whose children do the work: their CPU
    must count, or the per-request cost of two workers would read as almost nothing."""
    bench = _bench()
    # a child that uses 0.3 s of CPU (its own clock, not the wall's), then waits
    burn = (
        "import time, sys\n"
        "while time.process_time() < 0.3: pass\n"
        "print('done', flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        start = bench.tree_cpu_s(parent.pid)  # type: ignore[attr-defined]
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == b"done"
        time.sleep(0.1)  # the kernel's tick accounting catches up
        used = bench.tree_cpu_s(parent.pid) - start  # type: ignore[attr-defined]
    finally:
        parent.kill()
        parent.wait()
        assert parent.stdin is not None
        parent.stdin.close()  # the orphaned child reads the end of its input and exits
    # the child's 0.3 s count although the parent itself only waited
    assert used >= 0.25
    assert bench.tree_cpu_s(parent.pid) is None  # type: ignore[attr-defined]
    assert bench._per_request_ms(0.5, 100) == 5.0  # type: ignore[attr-defined]
    assert bench._per_request_ms(None, 100) is None  # type: ignore[attr-defined]
