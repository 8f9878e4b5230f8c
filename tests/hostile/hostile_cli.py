"""Run the real command line in a subprocess (the hostile suite's helper)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Done:
    """What a command line run returned."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one ``error: ...`` line on stderr; fails the test if there is anything else."""
        lines = self.err.strip().splitlines()
        assert "Traceback" not in self.err, self.err[-3000:]
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err[-3000:]
        return lines[0]


def run_cli(*args: str | Path, cwd: Path | None = None) -> Done:
    """``usergroups ARGS`` in a new Python process (the environment's PYTHONPATH kept)."""
    done = subprocess.run(
        [sys.executable, "-m", "usergroups", "-q", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "default"},
        timeout=300,
    )
    return Done(done.returncode, done.stdout, done.stderr)
