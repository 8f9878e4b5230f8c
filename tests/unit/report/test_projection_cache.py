"""The map's UMAP keeps its numba compilations on disk (issue 25, item 4).

umap-learn jits most of its functions without ``cache=True``: every new process compiled
them again (9 of the 13 CPU-seconds of the demo's map). The map now turns numba's disk
cache on for them, so a second process loads them instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usergroups.report.projection import project_2d

pytest.importorskip("umap")


@pytest.mark.slow
def test_issue25_umap_compilations_are_cached_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numba

    # numba's own setting, read when a function's cache is set up: point it at tmp_path so
    # that this test sees what is written and writes nothing elsewhere
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(loc=c, size=(40, 6)) for c in (-3.0, 0.0, 3.0)])
    _, xy, used = project_2d(x, method="umap", random_state=0)
    assert used == "umap" and xy.shape == (120, 2) and np.isfinite(xy).all()
    umap_entries = list(tmp_path.glob("umap*/*.nbi"))
    assert umap_entries, f"no compiled umap function cached under {tmp_path}"
    # the same input, again: the same map (a cached compilation computes the same thing)
    assert np.array_equal(project_2d(x, method="umap", random_state=0)[1], xy)
