"""bench/service.py's server CPU per request: every process of the server counts (issue 25)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_tree_cpu_counts_the_cpu_of_a_servers_child_processes(
    bench_script: Callable[[str], Any],
) -> None:
    """A server with workers = auto is a supervisor whose children do the work: their CPU
    must count, or the per-request cost of two workers would read as almost nothing."""
    bench = bench_script("service")
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
        start = bench.tree_cpu_s(parent.pid)
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == b"done"
        time.sleep(0.1)  # the kernel's tick accounting catches up
        used = bench.tree_cpu_s(parent.pid) - start
    finally:
        parent.kill()
        parent.wait()
        assert parent.stdin is not None
        parent.stdin.close()  # the orphaned child reads the end of its input and exits
    # the child's 0.3 s count although the parent itself only waited
    assert used >= 0.25
    assert bench.tree_cpu_s(parent.pid) is None
    assert bench._per_request_ms(0.5, 100) == 5.0
    assert bench._per_request_ms(None, 100) is None
