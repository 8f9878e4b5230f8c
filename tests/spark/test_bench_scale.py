"""``bench/scale.py`` measures the Spark engine's process tree honestly (issue 25): a copy
of the JVM that has not run its command yet shares the JVM's pages and is not counted
again; the JVM's and its children's CPU is read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc (Linux)")


# a process named "java" that forks a copy of itself (no exec, as a JVM thread's clone
# before it execs) and starts a real command (sleep), then spins to spend CPU
FAKE_JVM = """
import os, subprocess, sys, time
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
cmd = subprocess.Popen(["sleep", "30"])
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print("ready", flush=True)
time.sleep(30)
"""


def test_issue_25_a_jvm_clone_before_exec_is_not_counted_twice(
    tmp_path: Path, bench_script: Callable[[str], Any]
) -> None:
    bench = bench_script("scale")
    java = tmp_path / "java"
    java.symlink_to(sys.executable)
    proc = subprocess.Popen(
        [str(java), "-c", FAKE_JVM], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        tree = bench._tree_sample(proc.pid)
        names = sorted(name for name, _, _ in tree.values())
        # the fake JVM and its command, not its un-exec'd copy
        assert names == ["java", "sleep"], names
        assert tree[proc.pid][2] > 0.2  # its own CPU seconds
        roles = bench._roles(tree, proc.pid)
        assert roles["workers"] < roles["driver"]  # sleep is tiny; no second "JVM"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
