"""What the benchmark scripts share: writing their results JSON, atomically, with the run."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def write_results(path: Path, script: str, argv: list[str] | None, runs: Any) -> dict[str, Any]:
    """Write ``{"command", "measured", "cpu_count", "runs"}`` to ``path``; return it."""
    from usergroups.persistence.atomic import atomic_write_bytes

    args = argv if argv is not None else sys.argv[1:]
    payload = {
        "command": " ".join(["python", f"bench/{script}", *args]),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu_count": os.cpu_count(),
        "runs": runs,
    }
    atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode())
    return payload
