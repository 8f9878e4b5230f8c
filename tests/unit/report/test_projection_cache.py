"""The map's UMAP keeps its numba compilations on disk (issue 25, item 4).

umap-learn jits most of its functions without ``cache=True``: every new process compiled
them again (9 of the 13 CPU-seconds of the demo's map). The map now turns numba's disk
cache on for them, so a second process loads them instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("umap")


@pytest.mark.slow
def test_issue25_umap_compilations_are_cached_on_disk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_python: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """In a new interpreter (in this one another test may already have compiled UMAP's
    functions, which are then never written), with numba's cache pointed at tmp_path."""
    code = (
        "import sys, numpy as np\n"
        "from usergroups.report.projection import project_2d\n"
        "rng = np.random.default_rng(0)\n"
        "x = np.vstack([rng.normal(loc=c, size=(40, 6)) for c in (-3.0, 0.0, 3.0)])\n"
        "_, xy, used = project_2d(x, method='umap', random_state=0)\n"
        "assert used == 'umap' and xy.shape == (120, 2) and np.isfinite(xy).all()\n"
        "np.save(sys.argv[1], xy)\n"
    )
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    runs = []
    for name in ("first.npy", "second.npy"):
        done = fresh_python(code, str(tmp_path / name))
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(np.load(tmp_path / name))
        umap_entries = list((tmp_path / "numba").glob("umap*/*.nbi"))
        assert umap_entries, f"no compiled umap function cached under {tmp_path / 'numba'}"
    # the second process loads the cached compilations: the same map
    assert np.array_equal(runs[0], runs[1])
