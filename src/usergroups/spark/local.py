"""The local (numpy) counterparts of the Spark engine's steps that are not in the local engine.

:func:`project_users` and :func:`assign_users` place every user of a dataset into the
groups of an already fitted model, as ``usergroups discover --engine spark --fit-sample``
does in Spark: the semantic part is pooled from the user's texts (or the mean of their
items' vectors), the behaviour part is the popularity-damped, row-normalised interaction
row projected on the fitted SVD components, the two are fused with the fitted weights,
and each user goes to the centroid with the highest cosine. The tests check that both
engines agree on it; :func:`postprocess_summary` is the merge / fold / relabel of
:mod:`usergroups.clustering.postprocess` computed from per-group sums and counts only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import nearest_centroid
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.errors import ConfigError
from usergroups.fusion import UserVectorBuilder
from usergroups.linalg import mean_rows, unit_rows

__all__ = ["assign_users", "frozen_config", "postprocess_summary", "project_users"]

logger = logging.getLogger(__name__)

_FROZEN = {
    "align.method": "none",
    "clustering.select": "silhouette",
    "recommend.personal": "none",
}


def frozen_config(config: DiscoveryConfig) -> tuple[DiscoveryConfig, list[str]]:
    """The configuration the Spark engine runs: frozen text vectors and group popularity.

    Settings that need a validation split carved on one machine (alignment, the personal
    model, ``"auto"`` weights chosen on validation) are replaced by their fixed
    counterparts; the second value lists what was changed, for a warning.
    """
    data = config.model_dump()
    overrides: dict[str, Any] = {}
    for key, value in _FROZEN.items():
        section, name = key.split(".")
        if name in data.get(section, {}) and data[section][name] != value:
            overrides[key] = value
    if data["user_vectors"].get("text_weight") == "auto":
        overrides["user_vectors.text_weight"] = 0.5
    for key in ("personal_weight", "personal_shrinkage", "cold_weight", "cold_spread_weight"):
        if data["recommend"].get(key) == "auto":
            overrides[f"recommend.{key}"] = 0.0
    if not overrides:
        return config, []
    return config.with_overrides(overrides), [f"{k}={v!r}" for k, v in overrides.items()]


def text_weight(config: DiscoveryConfig) -> float:
    """The fixed share of the text part of a :func:`frozen_config` (it replaced ``"auto"``)."""
    return float(config.user_vectors.text_weight)


def damped_rows(x: sp.csr_matrix) -> sp.csr_matrix:
    """Binary interactions with columns damped by 1/sqrt(popularity), rows unit length."""
    x = sp.csr_matrix(x, dtype=np.float32)
    x.data[:] = 1.0
    pop = np.asarray(x.sum(axis=0)).ravel()
    damp = (1.0 / np.sqrt(np.maximum(pop, 1.0))).astype(np.float32)
    xn = sp.csr_matrix(x.multiply(damp[None, :]), dtype=np.float32)
    norms = np.sqrt(np.asarray(xn.multiply(xn).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ xn)


def components_for(
    components: np.ndarray, component_items: np.ndarray, item_ids: np.ndarray
) -> FloatMatrix:
    """SVD components re-indexed to ``item_ids``; items the fit never saw get zeros.

    Returns
    -------
    ndarray of shape (len(item_ids), n_components)
    """
    lookup = {str(i): j for j, i in enumerate(component_items.tolist())}
    out = np.zeros((len(item_ids), components.shape[0]), dtype=np.float32)
    for row, item in enumerate(item_ids.tolist()):
        j = lookup.get(str(item))
        if j is not None:
            out[row] = components[:, j]
    return out


def project_users(
    model: Any,
    dataset: Dataset,
    text_vectors: np.ndarray,
    item_vectors: np.ndarray | None = None,
) -> tuple[FloatMatrix, FloatMatrix]:
    """Fused and semantic vectors of every user of ``dataset`` in ``model``'s space.

    Parameters
    ----------
    model : GroupDiscovery
        Fitted in this process (it keeps ``user_vector_builder_``).
    dataset : Dataset
    text_vectors : ndarray of shape (len(dataset.texts), dim)
    item_vectors : ndarray of shape (dataset.n_items, dim), optional
        As in :meth:`UserVectorBuilder.fit`.

    Returns
    -------
    vectors : ndarray of shape (n_users, n_features)
    semantic : ndarray of shape (n_users, dim)
    """
    builder = getattr(model, "user_vector_builder_", None)
    if builder is None:
        raise ConfigError(
            "the model keeps no fitted user-vector builder (a loaded model does not); "
            "assigning new users needs a model fitted in this process"
        )
    uv = model.config.user_vectors
    semantic_builder = UserVectorBuilder(
        text_pooling=uv.text_pooling, behaviour="none", text_weight=1.0
    ).fit(dataset, text_vectors, item_vectors)
    semantic = semantic_builder.semantic_
    if builder.behaviour == "svd" and hasattr(builder, "svd_components_"):
        comps = components_for(builder.svd_components_, model.item_ids_.ids, dataset.item_ids.ids)
        behaviour = np.asarray(damped_rows(dataset.interaction_matrix()) @ comps, np.float32)
    elif builder.behaviour == "item_mean":
        behaviour = mean_rows(dataset.interaction_matrix(), semantic_builder.item_vectors_)
    else:
        behaviour = np.zeros((dataset.n_users, builder.behaviour_.shape[1]), np.float32)
    return builder.fuse(semantic, behaviour), semantic


def assign_users(
    model: Any,
    dataset: Dataset,
    text_vectors: np.ndarray,
    item_vectors: np.ndarray | None = None,
) -> IntVector:
    """Group of every user of ``dataset``: the nearest of ``model.centroids_`` by cosine."""
    vectors, _ = project_users(model, dataset, text_vectors, item_vectors)
    return nearest_centroid(vectors, model.centroids_)


def postprocess_summary(
    sums: np.ndarray,
    counts: np.ndarray,
    *,
    min_group_size: int = 1,
    merge_threshold: float | None = None,
) -> tuple[dict[int, int], list[tuple[int, int]], list[int]]:
    """Merge close groups, fold small ones and number them by size, from summaries only.

    The same steps and tie rules as :func:`usergroups.clustering.postprocess_groups`,
    computed from each group's vector sum and size, so a distributed engine never
    gathers the users.

    Parameters
    ----------
    sums : ndarray of shape (n_groups, n_features)
        Sum of each group's member vectors (groups ``0 .. n_groups - 1``).
    counts : ndarray of shape (n_groups,)

    Returns
    -------
    label_map : dict[int, int]
        Final group of every input group.
    merged : list of (int, int)
    folded : list of int
    """
    sums = np.asarray(sums, dtype="float64").copy()
    counts = np.asarray(counts, dtype=np.int64).copy()
    present = np.flatnonzero(counts > 0)
    groups = present.astype(np.int64)
    sums, counts = sums[present], counts[present]
    k = groups.size
    owner = np.arange(k)
    merged: list[tuple[int, int]] = []

    if merge_threshold is not None and k >= 2:
        u = unit_rows(sums, dtype="float64")
        sims = u @ u.T
        np.fill_diagonal(sims, -np.inf)
        alive = np.ones(k, dtype=bool)
        while True:
            i, j = divmod(int(np.argmax(sims)), k)
            if not sims[i, j] > merge_threshold:
                break
            kept, absorbed = (i, j) if (counts[i], -i) >= (counts[j], -j) else (j, i)
            merged.append((int(groups[kept]), int(groups[absorbed])))
            sums[kept] += sums[absorbed]
            counts[kept] += counts[absorbed]
            owner[owner == absorbed] = kept
            alive[absorbed] = False
            u[kept] = unit_rows(sums[kept], dtype="float64")[0]
            row = np.where(alive, u @ u[kept], -np.inf)
            row[kept] = -np.inf
            sims[kept, :] = row
            sims[:, kept] = row
            sims[absorbed, :] = -np.inf
            sims[:, absorbed] = -np.inf
    # after merging, each surviving position is one group
    alive_pos = np.unique(owner)
    folded: list[int] = []
    target = {int(p): int(p) for p in alive_pos}
    if alive_pos.size:
        a_counts = counts[alive_pos]
        large = a_counts >= min_group_size
        if not large.any():
            large[int(np.argmax(a_counts))] = True
        small = np.flatnonzero(~large)
        if small.size:
            u = unit_rows(sums[alive_pos], dtype="float64")
            large_idx = np.flatnonzero(large)
            best = large_idx[np.argmax(u[small] @ u[large_idx].T, axis=1)]
            for s, t in zip(small.tolist(), best.tolist(), strict=True):
                target[int(alive_pos[s])] = int(alive_pos[t])
                folded.append(int(groups[alive_pos[s]]))
    final_counts: dict[int, int] = {}
    for p in alive_pos.tolist():
        t = target[p]
        final_counts[t] = final_counts.get(t, 0) + int(counts[p])
    # number by size, largest first; ties by the lower label
    order = sorted(final_counts, key=lambda p: (-final_counts[p], int(groups[p])))
    rank = {p: r for r, p in enumerate(order)}
    label_map = {int(groups[g]): rank[target[int(owner[g])]] for g in range(k)}
    return label_map, merged, sorted(folded)
