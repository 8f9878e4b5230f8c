"""Every known user's best items, ranked once per model and read back memory-mapped.

``GET /users/{user_id}`` for a user no event has changed is then two array slices: no
scoring, no sort. The arrays are computed the way :meth:`OnlineModel.user` ranks a user
(the model's blended scores, seen items left out, ties to the lower item index), kept to
``k`` items (the largest ``n`` a request may ask for), and written as ``.npy`` files in the
cache (``$USERGROUPS_CACHE/serve`` or ``~/.cache/usergroups/serve``), not in the model
directory, which the service never writes. Several worker processes map the same files, so
they share the pages. A cache entry is named by the model's path, version hash, arrays
file (size and time) and ``k``, so a refit or another ``max_n`` gets a new one.

Examples
--------
>>> import numpy as np
>>> top = TopItems(np.array([[2, 0, -1]], np.int32), np.array([[0.9, 0.5, -np.inf]], np.float32))
>>> top.row(0, 2)
(array([2, 0], dtype=int32), array([0.9, 0.5], dtype=float32))
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from usergroups.recommend import top_n

__all__ = ["TopItems", "cache_root", "open_top_items", "rank_users"]

logger = logging.getLogger(__name__)

_FORMAT = 1
"""Bump when what the files hold changes: older entries are then ignored."""
_BATCH_ELEMENTS = 4_000_000
"""Scores ranked at once (rows x items): bounds the memory of a build."""


class TopItems:
    """Top-``k`` item indices and scores of every known user, in the model's row order.

    Parameters
    ----------
    items : ndarray of shape (n_users, k), int32
        Item indices, best first; -1 pads a user with fewer than ``k`` unseen items.
    scores : ndarray of shape (n_users, k), float32
    """

    def __init__(self, items: np.ndarray, scores: np.ndarray) -> None:
        self.items = items
        self.scores = scores
        self.k = int(items.shape[1])

    def row(self, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` (at most ``k``) item indices and scores of user ``row``."""
        return self.items[row, :n], self.scores[row, :n]


def cache_root() -> Path:
    """``$USERGROUPS_CACHE/serve``, else ``$XDG_CACHE_HOME/usergroups/serve``, else
    ``~/.cache/usergroups/serve``."""
    root = os.environ.get("USERGROUPS_CACHE")
    if root:
        return Path(root).expanduser() / "serve"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "usergroups" / "serve"


def _entry(model_dir: Path, version: str, k: int) -> Path:
    arrays = model_dir / "arrays.npz"
    st = arrays.stat()
    key = f"{_FORMAT}|{model_dir.resolve()}|{version}|{st.st_size}|{st.st_mtime_ns}|{k}"
    return cache_root() / f"{version}-k{k}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def rank_users(model: Any, k: int, *, personal: bool) -> TopItems:
    """Rank every known user's items as :meth:`OnlineModel.user` does, in batches.

    Parameters
    ----------
    model : GroupDiscovery
        Fitted.
    k : int
        Items kept per user (at most the number of items).
    personal : bool
        Blend in the personal model (:meth:`GroupDiscovery.blend_scores`), as the model
        ranks users when it has one; else the group's scores alone.
    """
    seen = sp.csr_matrix(model.seen_)
    n_users, n_items = seen.shape
    k = max(1, min(int(k), n_items))
    items = np.full((n_users, k), -1, dtype=np.int32)
    scores = np.full((n_users, k), -np.inf, dtype=np.float32)
    labels = np.asarray(model.labels_)
    step = max(1, _BATCH_ELEMENTS // max(n_items, 1))
    for start in range(0, n_users, step):
        rows = np.arange(start, min(start + step, n_users))
        block = seen[rows]
        part = model.state_.group_part(rows)
        raw = model.blend_scores(labels[rows], block, group_part=part) if personal else part
        ranked = np.array(np.atleast_2d(raw), dtype=np.float32)
        ranked[np.repeat(np.arange(len(rows)), np.diff(block.indptr)), block.indices] = -np.inf
        idx, values = top_n(ranked, k)
        items[rows] = idx
        scores[rows] = values
    return TopItems(items, scores)


def open_top_items(model: Any, model_dir: Path, version: str, k: int) -> TopItems:
    """The cached ranking of ``model`` (memory-mapped), computed and stored on first use.

    Workers that start together may all compute it; each writes its own temporary folder
    and renames it into place, so a reader sees a whole entry or none. Where the cache
    cannot be written the ranking is kept in memory (and a warning says why).

    Parameters
    ----------
    model : GroupDiscovery
        Loaded from ``model_dir``.
    model_dir : Path
    version : str
        :func:`~usergroups.service.state.model_version` of ``model_dir``.
    k : int
        Items kept per user.
    """
    n_users, n_items = model.seen_.shape
    k = max(1, min(int(k), n_items))
    entry = _entry(Path(model_dir), version, k)
    loaded = _load(entry, (n_users, k))
    if loaded is not None:
        return loaded
    # the model's own ranking (blend_scores) unless it is the plain group popularity
    personal = (
        getattr(model, "personal_", None) is not None
        and float(getattr(model, "personal_weight_", 0.0)) > 0
    ) or getattr(model, "group_part_", "groups") != "groups"
    t0 = time.perf_counter()
    top = rank_users(model, k, personal=personal)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        np.save(tmp / "items.npy", top.items, allow_pickle=False)
        np.save(tmp / "scores.npy", top.scores, allow_pickle=False)
        try:
            os.rename(tmp, entry)
        except OSError:  # another worker's entry is in place: the same arrays
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        logger.warning(
            "cannot write the users' ranking to %s (%s); keeping it in memory", entry, exc
        )
        return top
    logger.info(
        "ranked %d users' top %d items in %.1fs into %s",
        n_users,
        k,
        time.perf_counter() - t0,
        entry,
    )
    return _load(entry, (n_users, k)) or top


def _load(entry: Path, shape: tuple[int, int]) -> TopItems | None:
    try:
        items = np.load(entry / "items.npy", mmap_mode="r", allow_pickle=False)
        scores = np.load(entry / "scores.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if items.shape != shape or scores.shape != shape:
        return None
    return TopItems(items, scores)
