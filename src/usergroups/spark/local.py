"""The local (numpy) counterparts of the Spark engine's steps that are not in the local engine.

:func:`project_users` and :func:`assign_users` place every user of a dataset into the
groups of an already fitted model, as ``usergroups discover --engine spark --fit-sample``
does in Spark: the semantic part is pooled from the user's texts (or the mean of their
items' vectors), the behaviour part is the popularity-damped, row-normalised interaction
row projected on the fitted SVD components, the two are fused with the fitted weights,
and each user goes to the centroid with the highest cosine. The tests check that both
engines agree on it. :func:`postprocess_summary` (the merge / fold / relabel from per-group
sums and counts) lives in :mod:`usergroups.clustering.postprocess` and is re-exported here.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from usergroups._typing import FloatMatrix, IntVector
from usergroups.clustering.base import nearest_centroid
from usergroups.clustering.postprocess import postprocess_summary
from usergroups.config import DiscoveryConfig
from usergroups.data import Dataset
from usergroups.errors import ConfigError
from usergroups.fusion import UserVectorBuilder
from usergroups.fusion.vectors import behaviour_block
from usergroups.linalg import DEFAULT_TEXT_WEIGHT

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
        overrides["user_vectors.text_weight"] = DEFAULT_TEXT_WEIGHT
    for key in ("personal_weight", "personal_shrinkage", "cold_weight", "cold_spread_weight"):
        if data["recommend"].get(key) == "auto":
            overrides[f"recommend.{key}"] = 0.0
    if not overrides:
        return config, []
    return config.with_overrides(overrides), [f"{k}={v!r}" for k, v in overrides.items()]


def text_weight(config: DiscoveryConfig) -> float:
    """The fixed share of the text part (``"auto"`` counts as
    :data:`~usergroups.linalg.DEFAULT_TEXT_WEIGHT`)."""
    w = config.user_vectors.text_weight
    return DEFAULT_TEXT_WEIGHT if isinstance(w, str) else float(w)


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
    x = dataset.interaction_matrix()
    if builder.behaviour == "svd" and hasattr(builder, "svd_components_"):
        comps = components_for(builder.svd_components_, model.item_ids_.ids, dataset.item_ids.ids)
        behaviour, _ = behaviour_block(x, "svd", components=comps.T)
    elif builder.behaviour == "item_mean":
        behaviour, _ = behaviour_block(x, "item_mean", item_vectors=semantic_builder.item_vectors_)
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
