"""One answer from a saved model, reading only what it needs (issue 25).

``usergroups assign`` and ``recommend`` answer one question each. Through
:meth:`GroupDiscovery.load <usergroups.pipeline.GroupDiscovery.load>` that cost about
0.75 CPU-s, mostly imports (pandas, scipy.sparse, pyarrow, pydantic) and reading every table.
:func:`load_answers` reads the same model directory with numpy and the standard library
alone: the manifest's checksums (as ``load`` checks them), ``state.json``, the members of
``arrays.npz`` the question needs and ``answer.json``, the ids, item names, group labels and
settings that :func:`usergroups.persistence.save_model` writes for this path (instead of
the Parquet tables and the pydantic config).

The answers are the same bytes as :meth:`GroupDiscovery.assign` and ``recommend``: both
call the functions of this module (:func:`place_new_users`, :func:`new_user_scores`,
:func:`blended_scores`, :func:`assign_columns`, :func:`recommendation_columns`) and the
group parts of :class:`usergroups.fitted.GroupParts`; only the storage differs. Sparse
products go through :class:`SparseRows`, which adds the same float32 terms in the same
order as scipy.sparse does. A directory without ``answer.json`` (a model saved before it),
with LoRA adapters, or without a manifest is answered by the full path, said in one log
line.

Examples
--------
>>> import tempfile
>>> from usergroups import GroupDiscovery, DiscoveryConfig
>>> from usergroups.testing import make_planted
>>> planted = make_planted(n_users=60, n_groups=2, random_state=0)
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing", "use_cache": False},
...                                       "clustering": {"n_groups": 2}})
>>> path = GroupDiscovery(cfg).fit(planted.dataset).save(tempfile.mkdtemp() + "/m")
>>> answers = load_answers(path)
>>> answers.recommend([answers.user_ids[0]], n=3).columns[:3]
['user_id', 'rank', 'item_id']
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._typing import FloatMatrix, IntVector
from usergroups.fitted import CHOICE_NAMES, Choice, GroupParts, softmax_confidence
from usergroups.linalg import csr_weighted_rows, unit_rows
from usergroups.ranking import top_n

__all__ = [
    "ANSWER_ARRAYS",
    "ANSWER_FILE",
    "Answers",
    "SparseRows",
    "Table",
    "assign_columns",
    "blended_scores",
    "load_answers",
    "new_user_scores",
    "place_new_users",
    "recommendation_columns",
    "text_vectors",
]

logger = logging.getLogger(__name__)

ANSWER_FILE = "answer.json"
"""What the answer path reads instead of the Parquet tables and ``config.json``."""
ANSWER_ARRAYS = "answer.npz"
"""The groups' centres new users are placed by, as the full state computes them."""
ANSWER_FORMAT = 1

TitleOf = Callable[[str], str]
NameOf = Callable[[str], tuple[str, str]]


# ----------------------------------------------------------------- the shared rules
def text_vectors(encoder: Any, texts: Sequence[str]) -> FloatMatrix:
    """Unit sentence vectors of ``texts`` (the encoder's, cleaned and cached as it is
    configured); shape (n, dim)."""
    return unit_rows(np.asarray(encoder.encode(list(texts), show_progress=False), np.float32))


def place_new_users(
    parts: Any, semantic: FloatMatrix, *, method: str, n_neighbors: int
) -> tuple[FloatMatrix, FloatMatrix]:
    """Group probabilities and aligned vectors of new users known by their sentence
    vectors ``semantic``.

    The head (when the model has one) maps them into the aligned space; a
    distance-weighted vote of the nearest members (``assign.method = "knn"``) or the
    softmax over the groups' aligned centroids (``"centroid"``) gives the probabilities.

    Parameters
    ----------
    parts : FittedState or the answer path's state
        ``head``, ``n_groups``, ``labels``, ``text_block`` and ``aligned_centroids``.
    semantic : ndarray of shape (n, d0)
    method : {"knn", "centroid"}
    n_neighbors : int

    Returns
    -------
    proba : ndarray of shape (n, n_groups)
    query : ndarray of shape (n, d)
    """
    query = semantic if parts.head is None else parts.head.transform(semantic)
    if parts.n_groups == 0:
        return np.zeros((len(semantic), 0), dtype=np.float32), query
    if method == "centroid":
        return softmax_confidence(query @ parts.aligned_centroids.T), query
    from usergroups.clustering.assign import knn_proba

    proba = knn_proba(query, parts.text_block, parts.labels, parts.n_groups, n_neighbors)
    return proba, query


def new_user_scores(
    parts: Any, proba: FloatMatrix, query: FloatMatrix, semantic: FloatMatrix
) -> FloatMatrix:
    """Item scores of new users (what ``assign`` ranks): the new-user model
    (:attr:`GroupParts.new_user_model`) over the groups' rows, the texts, the item-item
    model and the fine groups' soft membership; shape (n, n_items)."""
    rows = parts.recommender.group_scores(np.r_[np.arange(proba.shape[1]), -1])
    item_item = None if parts.personal is None else parts.personal.weights_
    model = parts.new_user_model
    # a mix without the group part does not pay for the fine groups' membership
    group = parts.new_user_group_part(query) if model.uses_group_part else None
    return np.asarray(model.scores(proba, rows, semantic, item_item, group), dtype=np.float32)


def blended_scores(
    group_part: npt.ArrayLike,
    personal: Any,
    seen: Any,
    n_seen: npt.ArrayLike,
    personal_weight: float,
    personal_shrinkage: float,
) -> FloatMatrix:
    """The group part blended with the personal model's scores of ``seen`` by
    ``personal_weight * n / (n + personal_shrinkage)`` for a user with ``n`` items
    (:func:`usergroups.recommend.hybrid.blend`); the group part alone without a personal
    model. Seen items are not masked; shape (n_users, n_items)."""
    scores = np.array(group_part, dtype=np.float32)
    if personal is not None and personal_weight > 0:
        from usergroups.recommend.hybrid import blend, personal_weights_for

        weights = personal_weights_for(n_seen, personal_weight, personal_shrinkage)
        scores = blend(scores, personal.scores(seen), weights)
    return scores


def _item_list(ids: np.ndarray, row: np.ndarray) -> list[str]:
    return [str(ids[i]) for i in row if i >= 0]


def assign_columns(
    texts: Sequence[str] | str,
    proba: FloatMatrix,
    scores: FloatMatrix,
    n: int,
    *,
    group_labels: Mapping[int, str],
    item_ids: np.ndarray,
    title_of: TitleOf,
    name_of: NameOf,
) -> dict[str, Any]:
    """The columns of :meth:`GroupDiscovery.assign`: ``text, group_id, confidence, label,
    items, titles, names, name_sources``, one row per text."""
    groups = proba.argmax(axis=1) if proba.shape[1] else np.full(len(proba), -1, dtype=np.int64)
    conf = proba[np.arange(len(proba)), groups] if proba.shape[1] else np.zeros(len(proba))
    idx, _ = top_n(scores, n)
    items = [_item_list(item_ids, row) for row in idx]
    named = [[name_of(i) for i in row] for row in items]
    return {
        "text": list(texts) if not isinstance(texts, str) else [texts],
        "group_id": groups.astype(np.int64),
        "confidence": np.round(conf.astype(np.float64), 4),
        "label": [group_labels.get(int(g), "noise") for g in groups],
        "items": items,
        "titles": [[title_of(i) for i in row] for row in items],
        "names": [[name for name, _ in row] for row in named],
        "name_sources": [[source for _, source in row] for row in named],
    }


def recommendation_columns(
    user_ids: np.ndarray,
    groups: np.ndarray,
    idx: np.ndarray,
    scores: np.ndarray,
    *,
    item_ids: np.ndarray,
    title_of: TitleOf,
    name_of: NameOf,
) -> dict[str, np.ndarray]:
    """The columns of :meth:`GroupDiscovery.recommend`: ``user_id, rank, item_id, title,
    name, name_source, score, group_id``, one row per recommended item (``idx >= 0``).

    Names are looked up once per distinct item, then indexed (a million users' lists
    hold far fewer items than rows).
    """
    valid = idx >= 0
    rr, cc = np.nonzero(valid)
    distinct, picked = np.unique(idx[valid], return_inverse=True)
    named = [name_of(str(i)) for i in item_ids[distinct]]
    titles = np.array([title_of(str(i)) for i in item_ids[distinct]], dtype=object)
    names = np.array([name for name, _ in named], dtype=object)
    sources = np.array([source for _, source in named], dtype=object)
    return {
        "user_id": np.asarray(user_ids, dtype=object)[rr],
        "rank": (cc + 1).astype(np.int64),
        "item_id": item_ids[distinct][picked],
        "title": titles[picked],
        "name": names[picked],
        "name_source": sources[picked],
        "score": scores[valid].astype(np.float64),
        "group_id": np.asarray(groups)[rr],
    }


# ----------------------------------------------------------------- numpy storage
class SparseRows:
    """A sparse matrix held as numpy arrays, multiplied on the left by a few sparse rows.

    :meth:`weighted_rows` gives ``R @ W`` for rows ``R`` given by their column indices and
    values, adding the same float32 terms in the same order as scipy.sparse's product of a
    CSR row by ``W`` (each output entry sums ``R[k] * W[k, j]`` over ``k`` in the row's
    stored order), so scores are the same bits as the full path's.

    Parameters
    ----------
    data, indices, indptr : ndarray
        CSR arrays (``by="row"``) or CSC arrays (``by="col"``: EASE's saved weights).
    shape : tuple of int

    Examples
    --------
    >>> w = SparseRows(np.array([1.0, 2.0, 3.0], np.float32), np.array([0, 2, 1]),
    ...                np.array([0, 2, 3]), (2, 3), by="row")
    >>> w.weighted_rows([np.array([1, 0])], [np.array([1.0, 0.5], np.float32)]).tolist()
    [[0.5, 3.0, 1.0]]
    """

    def __init__(
        self,
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        shape: tuple[int, int],
        *,
        by: str,
    ) -> None:
        if by not in ("row", "col"):
            raise ValueError(f"by={by!r} is not one of 'row', 'col'")
        self.data = np.asarray(data, dtype=np.float32)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.shape = (int(shape[0]), int(shape[1]))
        self.by = by

    @cached_property
    def _columns_of_entries(self) -> IntVector:
        """CSC storage: the column of every stored entry."""
        return np.repeat(np.arange(self.shape[1], dtype=np.int64), np.diff(self.indptr))

    def weighted_rows(
        self, rows: Sequence[np.ndarray], weights: Sequence[np.ndarray]
    ) -> FloatMatrix:
        """``R @ W`` for rows ``R`` given as column indices (each without repeats) and
        their values; shape (len(rows), n_columns), float32."""
        out = np.zeros((len(rows), self.shape[1]), dtype=np.float32)
        for i, (cols, vals) in enumerate(zip(rows, weights, strict=True)):
            k = np.asarray(cols, dtype=np.int64)
            v = np.asarray(vals, dtype=np.float32)
            if self.by == "row":
                out[i] = csr_weighted_rows(
                    self.indptr, self.indices, self.data, self.shape[1], [k], [v]
                )[0]
                continue
            rank = np.full(self.shape[0], -1, dtype=np.int64)
            rank[k] = np.arange(len(k))
            of_entry = rank[self.indices]
            picked = np.flatnonzero(of_entry >= 0)
            # entries in the order of the row's indices: the order scipy adds them in
            picked = picked[np.argsort(of_entry[picked], kind="stable")]
            terms = v[of_entry[picked]] * self.data[picked]
            np.add.at(out[i], self._columns_of_entries[picked], terms)
        return out


class _Personal:
    """The personal model's item-item weights as :class:`SparseRows`; scores as
    :class:`~usergroups.recommend.hybrid.PrunedEASE` and ``ItemKNN`` give them."""

    def __init__(self, weights: SparseRows) -> None:
        self.weights_ = weights

    def scores(self, seen: Sequence[np.ndarray]) -> FloatMatrix:
        ones = [np.ones(len(items), dtype=np.float32) for items in seen]
        return self.weights_.weighted_rows(seen, ones)


def _personal_from(arrays: Any) -> _Personal | None:
    """The personal model of ``arrays.npz`` (``knn_*`` CSR or ``ease_*`` CSC), or None."""
    for prefix, by in (("knn", "row"), ("ease", "col")):
        if f"{prefix}_data" in arrays.files:
            shape = tuple(int(v) for v in arrays[f"{prefix}_shape"])
            return _Personal(
                SparseRows(
                    arrays[f"{prefix}_data"],
                    arrays[f"{prefix}_indices"],
                    arrays[f"{prefix}_indptr"],
                    (shape[0], shape[1]),
                    by=by,
                )
            )
    return None


# ----------------------------------------------------------------- results
class Table:
    """Columns of equal length: what an answer is before it is rendered.

    The few DataFrame operations the CLI's renderer and item naming use (``in``, ``[]``,
    assignment, ``drop``, ``copy``, ``itertuples``, ``to_dict("records")``), so both paths
    render through the same code without pandas here.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = {
            name: values.tolist() if isinstance(values, np.ndarray) else list(values)
            for name, values in data.items()
        }

    @property
    def columns(self) -> list[str]:
        return list(self._data)

    def __len__(self) -> int:
        return len(next(iter(self._data.values()), []))

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __getitem__(self, name: str) -> list[Any]:
        return self._data[name]

    def __setitem__(self, name: str, values: Sequence[Any]) -> None:
        self._data[name] = list(values)

    def copy(self) -> Table:
        return Table(self._data)

    def drop(self, *, columns: Sequence[str]) -> Table:
        return Table({k: v for k, v in self._data.items() if k not in set(columns)})

    def itertuples(self, index: bool = False) -> Iterator[tuple[Any, ...]]:
        return zip(*self._data.values(), strict=True)

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:
        """One dict per row (pandas' ``orient="records"``, the only orientation here)."""
        if orient != "records":
            raise ValueError(f"Table.to_dict supports orient='records' only, got {orient!r}")
        return [dict(zip(self._data, row, strict=True)) for row in self.itertuples()]


# ----------------------------------------------------------------- the answer path
@dataclass(frozen=True)
class _EmbeddingSettings:
    """``config.json``'s ``embedding`` section as :func:`make_encoder` reads it."""

    model: str
    backend: str
    batch_size: int
    max_seq_length: int
    device: str
    cache_dir: str | None
    clean: bool
    use_cache: bool


class _AnswerState(GroupParts):
    """What answers read of a fitted state, loaded member by member from ``arrays.npz``."""

    def __init__(
        self, arrays: Any, centres: Any, scalars: Mapping[str, Any], smoothing: float
    ) -> None:
        from usergroups.recommend import GroupPopularity

        self._arrays = arrays
        self._centres = centres
        self._smoothing = smoothing
        self.choices = {
            name: Choice.from_dict(scalars["choices"][name])
            for name in CHOICE_NAMES
            if name in scalars.get("choices", {})
        }
        self.personal_weight = float(scalars["personal_weight"])
        self.personal_shrinkage = float(scalars["personal_shrinkage"])
        self.cold_weight = float(scalars["cold_weight"])
        self._new_users_saved = scalars.get("new_users")
        self.labels = np.asarray(arrays["labels"], dtype=np.int64)
        self.recommender = GroupPopularity.from_arrays(
            arrays["group_item_counts"], arrays["group_sizes"], arrays["item_popularity"], smoothing
        )
        self.personal = _personal_from(arrays)

    @property
    def n_groups(self) -> int:
        labels = self.labels
        return int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0

    @cached_property
    def seen_indptr(self) -> IntVector:
        return np.asarray(self._arrays["seen_indptr"], dtype=np.int64)

    @cached_property
    def seen_indices(self) -> IntVector:
        return np.asarray(self._arrays["seen_indices"], dtype=np.int64)

    def seen_rows(self, rows: IntVector) -> list[np.ndarray]:
        ptr = self.seen_indptr
        return [self.seen_indices[ptr[r] : ptr[r + 1]] for r in rows.tolist()]

    @cached_property
    def text_block(self) -> FloatMatrix:  # type: ignore[override]
        return np.asarray(self._arrays["text_block"], dtype=np.float32)

    @cached_property
    def aligned_centroids(self) -> FloatMatrix:
        return np.asarray(self._centres["aligned_centroids"], dtype=np.float32)

    @cached_property
    def fine_text_centroids(self) -> FloatMatrix | None:
        if "fine_text_centroids" not in self._centres.files:
            return None
        return np.asarray(self._centres["fine_text_centroids"], dtype=np.float32)

    @cached_property
    def head(self) -> Any:
        if "align_W" not in self._arrays.files:
            return None
        from usergroups.alignment.head import AlignmentHead

        return AlignmentHead.from_arrays({k: self._arrays[k] for k in _HEAD_ARRAYS})

    @cached_property
    def ridge(self) -> Any:
        if "ridge_W" not in self._arrays.files:
            return None
        from usergroups.recommend.text_ridge import TextItemRidge

        return TextItemRidge.from_arrays({"ridge_W": self._arrays["ridge_W"]})

    @cached_property
    def new_users(self) -> Any:
        if not self._new_users_saved:
            return None
        from usergroups.recommend.new_users import NewUserModel

        docs = {k: self._arrays[k] for k in ("newuser_item_docs",) if k in self._arrays.files}
        return NewUserModel.from_saved(self._new_users_saved, docs, self.ridge)

    @cached_property
    def fine(self) -> Any:
        if "fine_centroids" not in self._arrays.files:
            return None
        from usergroups.recommend import GroupPopularity
        from usergroups.recommend.fine_groups import FineGroups

        saved = {k: self._arrays[k] for k in _FINE_ARRAYS}
        counts, sizes, popularity = self._fine_counts(saved["fine_labels"], saved)
        return FineGroups.from_arrays(
            saved,
            None,
            self._smoothing,
            popularity=GroupPopularity.from_arrays(counts, sizes, popularity, self._smoothing),
        )

    def _fine_counts(
        self, fine_labels: np.ndarray, saved: Mapping[str, np.ndarray]
    ) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix]:
        """What each fine group consumes, counted with numpy: the integers
        :class:`~usergroups.recommend.fine_groups.FineGroups` counts with a sparse product
        (exact in float32 below 2**24 members)."""
        n_parts, n_fine = saved["fine_centroids"].shape[:2]
        n_users, n_items = len(self.labels), len(self.recommender.popularity_)
        labels = np.asarray(fine_labels, dtype=np.int64)
        flat = np.where(labels >= 0, labels + np.arange(n_parts) * n_fine, -1)
        user_of = np.repeat(np.arange(n_users), np.diff(self.seen_indptr))
        counts = np.zeros(n_parts * n_fine * n_items, dtype=np.int64)
        for p in range(n_parts):
            group = flat[user_of, p]
            ok = group >= 0
            counts += np.bincount(
                group[ok] * n_items + self.seen_indices[ok], minlength=len(counts)
            )
        placed = flat[flat >= 0]
        sizes = np.bincount(placed, minlength=n_parts * n_fine).astype(np.float32)
        popularity = np.bincount(self.seen_indices, minlength=n_items).astype(np.float32)
        popularity /= max(n_users, 1)
        return counts.reshape(n_parts * n_fine, n_items).astype(np.float32), sizes, popularity


_HEAD_ARRAYS = ("align_W", "align_items", "align_bias", "align_scale")
_FINE_ARRAYS = ("fine_centroids", "fine_labels", "fine_representative")


class Answers:
    """A saved model read for answers (:func:`load_answers`): ``assign`` and ``recommend``
    give the tables of :meth:`GroupDiscovery.assign` and ``recommend`` as :class:`Table`.

    Attributes
    ----------
    user_ids : list of str
    """

    def __init__(
        self, directory: Path, bundle: Mapping[str, Any], state: _AnswerState, arrays: Any
    ) -> None:
        self.directory = directory
        self._bundle = bundle
        self._state = state
        self._arrays = arrays
        self.user_ids: list[str] = list(bundle["user_ids"])
        items = bundle["items"]
        self._item_ids = np.array(items["item_id"], dtype=object)
        self._titles = dict(zip(items["item_id"], items["title"], strict=True))
        self._names = {
            i: (name, source)
            for i, name, source in zip(
                items["item_id"], items["name"], items["name_source"], strict=True
            )
        }
        self._group_labels = {int(g): str(label) for g, label in bundle["group_labels"]}

    def _title_of(self, item_id: str) -> str:
        return str(self._titles.get(item_id, ""))

    def _name_of(self, item_id: str) -> tuple[str, str]:
        return self._names.get(item_id, ("", ""))

    def assign(self, texts: list[str], *, n: int = 10) -> Table:
        """:meth:`GroupDiscovery.assign` of a loaded model, as a :class:`Table`."""
        from usergroups.embedding.factory import make_encoder

        encoder = make_encoder(_EmbeddingSettings(**self._bundle["embedding"]))
        semantic = text_vectors(encoder, texts)
        assign = self._bundle["assign"]
        proba, query = place_new_users(
            self._state, semantic, method=assign["method"], n_neighbors=assign["n_neighbors"]
        )
        scores = new_user_scores(self._state, proba, query, semantic)
        return Table(
            assign_columns(
                texts,
                proba,
                scores,
                n,
                group_labels=self._group_labels,
                item_ids=self._item_ids,
                title_of=self._title_of,
                name_of=self._name_of,
            )
        )

    def recommend(self, user_ids: list[str], *, n: int = 10) -> Table | None:
        """:meth:`GroupDiscovery.recommend` of a loaded model, as a :class:`Table`; None when
        an id is not spelled as the model stores it (the full path resolves other spellings,
        or names the unknown ids)."""
        positions = {u: i for i, u in enumerate(self.user_ids)}
        if any(str(u) not in positions for u in user_ids):
            return None
        state = self._state
        rows = np.array([positions[str(u)] for u in user_ids], dtype=np.int64)
        seen = state.seen_rows(rows)
        scores = blended_scores(
            state.group_part(rows),
            state.personal,
            seen,
            [len(items) for items in seen],
            state.personal_weight,
            state.personal_shrinkage,
        )
        for i, items in enumerate(seen):
            scores[i, items] = -np.inf
        idx, best = top_n(scores, n)
        return Table(
            recommendation_columns(
                np.asarray([str(u) for u in user_ids], dtype=object),
                state.labels[rows],
                idx,
                best,
                item_ids=self._item_ids,
                title_of=self._title_of,
                name_of=self._name_of,
            )
        )


def load_answers(directory: str | Path) -> Answers | None:
    """The model in ``directory`` read for answers, or None where the full path must load it.

    The manifest is checked as :func:`~usergroups.persistence.load_model` checks it (a
    damaged file is the same :class:`~usergroups.errors.ModelIntegrityError`). None, with
    one log line, for a directory that is missing, older than ``answer.json``, without a
    manifest, or with LoRA adapters (their merged encoder is built by the full path).
    """
    from usergroups.persistence.model_dir import read_json, verify_manifest

    path = Path(directory)
    if not path.is_dir():
        return None  # the full load says what is wrong
    verified = verify_manifest(path)
    why = _why_full_load(path, verified is not None)
    if why:
        logger.info("%s is answered through the full load: %s", path, why)
        return None
    bundle = read_json(path, ANSWER_FILE)
    scalars = read_json(path, "state.json")
    arrays = np.load(path / "arrays.npz", allow_pickle=False)
    centres = np.load(path / ANSWER_ARRAYS, allow_pickle=False)
    state = _AnswerState(arrays, centres, scalars, float(bundle["smoothing"]))
    return Answers(path, bundle, state, arrays)


def _why_full_load(path: Path, has_manifest: bool) -> str:
    """Why the model in ``path`` (its manifest checked) needs the full load, or ``""``."""
    from usergroups.persistence.model_dir import FORMAT_VERSION

    if not has_manifest:
        return "it has no manifest.json"
    if not (path / ANSWER_FILE).exists():
        return f"it has no {ANSWER_FILE} (saved before usergroups wrote one)"
    try:
        versions = json.loads((path / "versions.json").read_text())
        bundle = json.loads((path / ANSWER_FILE).read_text())
        scalars = json.loads((path / "state.json").read_text())
    except (OSError, ValueError):
        # missing or damaged: the full load names the file and what to do
        return f"it has no readable {ANSWER_FILE}, versions.json or state.json"
    if not isinstance(versions, dict) or versions.get("format_version") != FORMAT_VERSION:
        return "its format version is not this library's"
    if not isinstance(bundle, dict) or bundle.get("format") != ANSWER_FORMAT:
        return f"its {ANSWER_FILE} has another format"
    if not isinstance(scalars, dict) or not (path / ANSWER_ARRAYS).exists():
        return f"it has no {ANSWER_ARRAYS} or state.json object"
    if (path / "adapter").exists():
        return "its encoder has LoRA adapters, merged by the full load"
    return ""
