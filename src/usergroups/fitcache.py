"""Reuse what a fit computed when its inputs are identical: a content-addressed cache.

A second ``discover`` with the same data and settings should cost seconds, not the minute
the validation grids, the alignment head, the group profiles and the 2-D map take. Each
of those steps is a pure function of its inputs (seeded), so its result is stored under
the SHA-256 of everything it reads:

- the code: the bytes of every ``.py`` file of the installed ``usergroups`` package (so
  an upgrade or a local edit never serves an old result) and the installed versions of
  the numerical libraries (numpy, scipy, scikit-learn, torch, umap-learn, ...);
- the data: the dataset's tables (interactions, texts, item metadata, user attributes),
  hashed row by row with pandas;
- the vectors the step reads (raw bytes, shape and dtype);
- the settings the step reads (JSON).

Entries are pickles in ``fits/`` beside the embedding cache
(``~/.cache/usergroups/fits``; ``embedding.cache_dir``'s parent otherwise;
``$USERGROUPS_FITS`` overrides both), written to a
temporary file and renamed, so a concurrent or interrupted run never leaves half an entry;
an unreadable entry is recomputed and overwritten. Turn it off with ``reuse = false`` in
the configuration (``--set reuse=false``). The cache is local, trusted data like the
embedding cache (pickle is not safe for files from elsewhere).

One caveat, said where it applies: a step that stops on a wall-clock budget
(``align.time_budget_s``) is not a pure function of its inputs; with reuse on, the second
run gets the first run's result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.persistence.atomic import atomic_path

__all__ = [
    "FITS_ENV",
    "MAX_USERS",
    "FitCache",
    "code_fingerprint",
    "fingerprint",
    "fit_cache_dir",
    "fit_cache_for",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Distributions whose versions change numerical results: part of every key (installed
#: or not, read from their metadata without importing them).
_NUMERIC_DISTS = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "umap-learn",
    "pynndescent",
    "numba",
    "jieba",
    "pandas",
)


@cache
def code_fingerprint() -> str:
    """SHA-256 of the package's source files (path and bytes, sorted)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@cache
def _lib_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in _NUMERIC_DISTS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _update(h: Any, value: Any) -> None:
    """Feed ``value`` into the hash ``h`` unambiguously (type tag, shape, bytes)."""
    if value is None:
        h.update(b"N")
    elif isinstance(value, np.generic):
        _update(h, np.asarray(value))
    elif isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        if a.dtype == object:
            h.update(b"O")
            _update(h, pd.Series(a.ravel()))
            h.update(repr(a.shape).encode())
            return
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8))
    elif sp.issparse(value):
        m = sp.csr_matrix(value)
        h.update(f"S{m.shape}".encode())
        for part in (m.data, m.indices, m.indptr):
            _update(h, np.asarray(part))
    elif isinstance(value, pd.DataFrame):
        h.update(f"D{list(map(str, value.columns))}{list(map(str, value.dtypes))}".encode())
        _update(h, pd.util.hash_pandas_object(value, index=False).to_numpy())
    elif isinstance(value, pd.Series):
        h.update(f"P{value.dtype}".encode())
        _update(h, pd.util.hash_pandas_object(value, index=False).to_numpy())
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for item in value:
            _update(h, item)
    elif isinstance(value, dict):
        h.update(f"M{len(value)}".encode())
        for k in sorted(value, key=str):
            _update(h, str(k))
            _update(h, value[k])
    elif isinstance(value, (str, int, float, bool)):
        h.update(f"J{json.dumps(value)}".encode())
    elif hasattr(value, "interactions") and hasattr(value, "texts"):  # a Dataset
        h.update(b"dataset")
        for name in ("interactions", "texts", "items", "users"):
            _update(h, getattr(value, name, None))
    elif hasattr(value, "model_dump"):  # a pydantic config section
        _update(h, value.model_dump(mode="json"))
    else:
        raise TypeError(f"fingerprint: cannot hash a {type(value).__name__}")


def fingerprint(*parts: Any) -> str:
    """SHA-256 (hex) of ``parts``: arrays, sparse matrices, frames, datasets, JSON values.

    Examples
    --------
    >>> fingerprint(np.arange(3), {"k": 1}) == fingerprint(np.arange(3), {"k": 1})
    True
    >>> fingerprint(np.arange(3)) == fingerprint(np.arange(3.0))
    False
    """
    h = hashlib.sha256()
    for part in parts:
        _update(h, part)
    return h.hexdigest()


class FitCache:
    """Results of pure fit steps, stored by the hash of their inputs.

    Parameters
    ----------
    directory : path or None
        Where entries live; ``None`` turns the cache off (every call computes).

    Examples
    --------
    >>> import tempfile
    >>> fc = FitCache(tempfile.mkdtemp())
    >>> fc.get_or_compute("square", (np.arange(3),), lambda: np.arange(3) ** 2).tolist()
    [0, 1, 4]
    >>> fc.hits, fc.misses
    (0, 1)
    >>> _ = fc.get_or_compute("square", (np.arange(3),), lambda: None)
    >>> fc.hits
    1
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = None if directory is None else Path(directory)
        self.hits = 0
        self.misses = 0
        self.reused: list[str] = []

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def key(self, step: str, inputs: tuple[Any, ...]) -> str:
        return fingerprint(step, code_fingerprint(), _lib_versions(), *inputs)

    def get_or_compute(self, step: str, inputs: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """The stored result of ``step`` for ``inputs``, or ``compute()`` stored for next time."""
        if self.directory is None:
            return compute()
        path = self.directory / f"{step}-{self.key(step, inputs)[:32]}.pkl"
        if path.exists():
            try:
                with path.open("rb") as f:
                    value: T = pickle.load(f)
            except Exception as exc:  # a damaged entry is recomputed, never trusted
                logger.warning("fit cache entry %s is unreadable (%s); recomputing", path, exc)
            else:
                self.hits += 1
                self.reused.append(step)
                logger.info("%s: reused from the fit cache (identical inputs)", step)
                return value
        self.misses += 1
        value = compute()
        try:
            # streamed to the temporary file: no second copy of a large result in memory
            with atomic_path(path) as tmp, tmp.open("wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:  # a read-only or full cache costs speed, not the fit
            logger.warning("fit cache: cannot store %s (%s); the next run recomputes it", step, exc)
        return value


MAX_USERS = 200_000
"""Above this many users the fit cache is off: its entries (user vectors, labels, the
selection's blocks) would take gigabytes of disk per fit, and such fits are not re-run
on a laptop for a quick look."""

FITS_ENV = "USERGROUPS_FITS"
"""Environment variable naming the fit cache directory (overrides the default)."""


def fit_cache_dir(embedding_cache_dir: str | None) -> Path:
    """``$USERGROUPS_FITS`` if set, else ``fits/`` beside the embedding cache (the LoRA
    adapters' ``lora/`` is its sibling)."""
    import os

    from usergroups.embedding import default_cache_dir

    if os.environ.get(FITS_ENV):
        return Path(os.environ[FITS_ENV]).expanduser()
    root = Path(embedding_cache_dir) if embedding_cache_dir else default_cache_dir()
    return root.parent / "fits"


def fit_cache_for(config: Any, n_users: int) -> FitCache:
    """The fit cache a configuration asks for: off with ``reuse = false`` or above
    :data:`MAX_USERS` users (said in one log line), else in :func:`fit_cache_dir`."""
    if not config.reuse:
        return FitCache(None)
    if n_users > MAX_USERS:
        logger.info(
            "fit cache off: %d users > %d (its entries would take gigabytes per fit)",
            n_users,
            MAX_USERS,
        )
        return FitCache(None)
    return FitCache(fit_cache_dir(config.embedding.cache_dir))
