"""`.ci/run` stops when a tool a suite needs cannot be installed (issue 13).

Before, it printed "... will be skipped" and went on, so whole suites (browser,
PostgreSQL, Spark) could skip in a green run. The script runs here in a copy whose tool
probes say "missing", with stub ``apt-get`` and ``make`` first on PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).resolve().parents[2] / ".ci" / "run"


def _run(
    tmp_path: Path, *, apt_ok: bool, have: bool
) -> tuple[subprocess.CompletedProcess[str], Path]:
    script = CI_RUN.read_text(encoding="utf-8")
    probes = re.compile(r"^(have_\w+)\(\) \{ .* \}$", flags=re.MULTILINE)
    assert len(probes.findall(script)) == 3, "expected one probe each for Chromium, PG, Java"
    script = probes.sub(rf"\1() {{ {'true' if have else 'false'}; }}", script)
    (tmp_path / ".ci").mkdir()
    run = tmp_path / ".ci" / "run"
    run.write_text(script, encoding="utf-8")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    made = tmp_path / "make-was-run"
    (stubs / "apt-get").write_text(f"#!/bin/sh\nexit {0 if apt_ok else 100}\n")
    (stubs / "make").write_text(f"#!/bin/sh\ntouch {made}\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(run)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return proc, made


def test_issue13_ci_stops_when_a_tool_cannot_be_installed(tmp_path: Path) -> None:
    proc, made = _run(tmp_path, apt_ok=False, have=False)
    assert proc.returncode == 1
    assert "Chromium could not be installed (apt-get install chromium failed)" in proc.stderr
    assert "rather than skip" in proc.stderr
    assert not made.exists(), "the tests ran without their tools"


def test_issue13_ci_stops_when_a_tool_is_still_missing_after_install(tmp_path: Path) -> None:
    proc, made = _run(tmp_path, apt_ok=True, have=False)
    assert proc.returncode == 1
    assert "Chromium is still missing after apt-get install chromium" in proc.stderr
    assert not made.exists()


def test_ci_runs_the_tests_when_every_tool_is_there(tmp_path: Path) -> None:
    proc, made = _run(tmp_path, apt_ok=False, have=True)
    assert proc.returncode == 0, proc.stderr
    assert made.exists()


@pytest.mark.parametrize("tool", ["chromium", "postgresql", "openjdk-17-jre-headless"])
def test_every_tool_is_needed_not_merely_tried(tool: str) -> None:
    script = CI_RUN.read_text(encoding="utf-8")
    assert re.search(rf"^need \w+ {re.escape(tool)} have_\w+ ", script, flags=re.MULTILINE)
    assert "will be skipped" not in script
