"""The 2-D map of users: UMAP on the user vectors, PCA for tiny data or without umap-learn.

The map is computed once and kept in the model directory as ``map.parquet`` (``user_id,
group_id, x, y``; the method in the file's metadata), so ``usergroups report`` redraws it
without running UMAP again.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from usergroups.errors import ConfigError, ModelDirectoryError

__all__ = ["MAP_FILE", "MapMethod", "has_umap", "project_2d", "read_map", "write_map"]

logger = logging.getLogger(__name__)

MapMethod = Literal["auto", "umap", "pca"]
MAP_FILE = "map.parquet"
_METHODS = ("auto", "umap", "pca")
_MIN_UMAP_POINTS = 50
_META_KEY = b"usergroups.map_method"


def project_2d(
    vectors: np.ndarray,
    *,
    method: MapMethod = "auto",
    max_points: int = 20_000,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Project (a seeded sample of) the rows of ``vectors`` to two dimensions.

    Parameters
    ----------
    vectors : ndarray of shape (n_users, n_features)
    method : {"auto", "umap", "pca"}
        ``"auto"`` uses UMAP (cosine metric) from 50 points on when umap-learn is
        installed, PCA otherwise.
    max_points : int
        A larger input is subsampled to this many rows (seeded), which keeps the map fast to
        compute and the report light.
    random_state : int or None

    Returns
    -------
    rows : ndarray of shape (n_points,)
        Indices of the projected rows, sorted.
    coords : ndarray of shape (n_points, 2), float32
    method : str
        ``"umap"`` or ``"pca"``: the method actually used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows, xy, used = project_2d(rng.normal(size=(30, 5)), method="auto")
    >>> xy.shape, used
    ((30, 2), 'pca')
    """
    if method not in _METHODS:
        raise ConfigError(f"map method={method!r} is not one of 'auto', 'umap', 'pca'")
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"vectors must be 2-D (n_users, n_features), got shape {x.shape}")
    n = len(x)
    rows = np.arange(n)
    if n > max_points:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(n, size=max_points, replace=False))
        x = x[rows]
    used = method
    if method == "auto":
        used = "pca"
        if len(x) >= _MIN_UMAP_POINTS:
            if has_umap():
                used = "umap"
            else:
                logger.info("umap-learn is not installed; the map uses PCA")
    coords = _umap(x, random_state) if used == "umap" else _pca(x, random_state)
    return rows, coords.astype(np.float32), used


def _umap(x: np.ndarray, random_state: int | None) -> np.ndarray:
    from usergroups._deps import require

    umap = require("umap", "report", package="umap-learn")
    _cache_compiled(("umap", "pynndescent"))
    if len(x) < 4:
        return _pca(x, random_state)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(15, len(x) - 1),
        min_dist=0.1,
        metric="cosine",
        random_state=random_state,
        # a seeded UMAP runs single-threaded anyway; saying so silences its warning
        n_jobs=1,
    )
    return np.asarray(reducer.fit_transform(x), dtype=np.float64)


def _cache_compiled(packages: tuple[str, ...]) -> int:
    """Turn on numba's disk cache for the jitted functions of ``packages`` that lack it.

    Most of umap-learn's functions are jitted without ``cache=True``, so every process
    compiled them again: 9 of the 13 CPU-seconds of the demo's map. This does what
    ``cache=True`` does, where numba puts it: ``__pycache__`` beside the package, or its
    user-wide cache when that is read-only, or ``$NUMBA_CACHE_DIR`` if set. Entries are
    keyed by the function's source file and argument types, so an upgrade recompiles; the
    maps are identical. Not in the usergroups cache root on purpose: a new root (a new
    project, the benchmarks' cold runs) would compile pynndescent's cached functions
    again too (27 CPU-s instead of 4, docs/speed.md). Returns how many were turned on.
    """
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    n = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in packages:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and isinstance(
                getattr(value, "_cache", None), NullCache
            ):
                value.enable_caching()
                n += 1
    logger.debug("numba disk cache turned on for %d functions of %s", n, ", ".join(packages))
    return n


def _pca(x: np.ndarray, random_state: int | None) -> np.ndarray:
    from sklearn.decomposition import PCA

    out = np.zeros((len(x), 2), dtype=np.float64)
    k = min(2, x.shape[1], len(x))
    if k == 0 or len(x) < 2:
        return out
    out[:, :k] = PCA(n_components=k, random_state=random_state).fit_transform(x)
    return out


def write_map(
    directory: Path, user_ids: np.ndarray, labels: np.ndarray, coords: np.ndarray, method: str
) -> Path:
    """Write ``map.parquet`` into a model directory atomically; return its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from usergroups.persistence.atomic import atomic_write_bytes

    frame = pd.DataFrame(
        {
            "user_id": np.asarray(user_ids).astype(str),
            "group_id": np.asarray(labels, dtype=np.int64),
            "x": coords[:, 0].astype(np.float32),
            "y": coords[:, 1].astype(np.float32),
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: method})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    path = Path(directory) / MAP_FILE
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    path.chmod(0o644)
    return path


def read_map(directory: Path) -> tuple[pd.DataFrame, str] | None:
    """``(frame, method)`` from a model directory's ``map.parquet``, or None if absent."""
    import pyarrow.parquet as pq

    path = Path(directory) / MAP_FILE
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ModelDirectoryError(
            f"{path} could not be read ({exc}); delete it and run `usergroups report` again"
        ) from exc
    method = (table.schema.metadata or {}).get(_META_KEY, b"unknown").decode()
    return table.to_pandas(), method


def has_umap() -> bool:
    """Whether umap-learn can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None
