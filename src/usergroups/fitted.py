"""`FittedState`: everything :meth:`GroupDiscovery.fit` learned and chose, in one frozen object.

``fit`` builds it, the model directory stores it (:mod:`usergroups.persistence`), ``load``,
refit, the service and the Spark engine read it. Nobody re-derives a setting from vectors:
the text weight, the blends and the number of groups are fields, and each choice says
where it came from (:class:`Choice`).

Examples
--------
>>> from usergroups import GroupDiscovery, DiscoveryConfig
>>> from usergroups.testing import make_planted
>>> planted = make_planted(n_users=120, n_groups=3, random_state=0)
>>> cfg = DiscoveryConfig.model_validate({"embedding": {"model": "hashing"},
...                                       "clustering": {"n_groups": 3}})
>>> state = GroupDiscovery(cfg).fit(planted.dataset).state_
>>> state.n_groups, state.choices["n_groups"].source
(3, 'config')
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix, IntVector
from usergroups.errors import DataError
from usergroups.linalg import fuse_blocks, pool_rows, unit_rows
from usergroups.shown_names import NameSource

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

    from usergroups.data import IdVocab
else:
    # the answer path (usergroups.answers) shares the rules below without them (issue 25)
    pd = lazy_module("pandas")
    sp = lazy_module("scipy.sparse")

__all__ = [
    "CHOICE_NAMES",
    "CHOICE_SOURCES",
    "Choice",
    "ChoiceSource",
    "FittedState",
    "GroupParts",
    "group_centroids",
    "softmax_confidence",
]

ChoiceSource = Literal["validation", "config", "default", "data"]

CHOICE_SOURCES: tuple[ChoiceSource, ...] = ("validation", "config", "default", "data")
"""Where a choice can come from (:class:`Choice`); models saved before ``"data"`` existed
use the first three."""

CHOICE_NAMES = (
    "text_weight",
    "n_groups",
    "personal_model",
    "group_part",
    "personal_weight",
    "personal_shrinkage",
    "ease_keep",
    "cold_weight",
    "cold_spread_weight",
    "cold_top_items",
    "ridge_l2",
    "fine_k",
    "fine_partitions",
    "fine_text_weight",
)
"""The settings ``fit`` chooses (or takes from the config), in the order they are reported."""

_CONFIDENCE_TEMPERATURE = 0.05
"""Softmax temperature over cosine similarities to the group centroids.

Cosines between a user and the centroids differ by a few hundredths; 0.05 turns a margin of
0.1 into odds of about e^2 = 7.4 : 1.
"""


def softmax_confidence(similarities: np.ndarray) -> FloatMatrix:
    """Row-wise softmax of cosine similarities at the fixed temperature; shape kept."""
    z = similarities / _CONFIDENCE_TEMPERATURE
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


@dataclass(frozen=True)
class Choice:
    """One setting of a fitted model and where it came from.

    Parameters
    ----------
    value : float, int, str or None
        The value in force (None: the setting does not apply, e.g. no personal model); a
        name for the choices among models (``personal_model``: ``"ease"`` or
        ``"itemknn"``; ``group_part``: ``"groups"`` or ``"popularity"``).
    source : {"validation", "config", "default", "data"}
        ``"validation"``: chosen on data carved from training; ``"config"``: fixed by
        the user; ``"default"``: an ``"auto"`` setting that could not be chosen and fell
        back to its documented default (``reason`` says why); ``"data"``: the only value
        the data allows, whatever the config says (e.g. text weight 1 without a behaviour
        block; ``reason`` says why).
    reason : str
        Why a default was used; empty otherwise.
    """

    value: float | int | str | None
    source: ChoiceSource
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"value", "source", "reason"}``."""
        return {"value": self.value, "source": self.source, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        source = data.get("source")
        if source not in CHOICE_SOURCES:
            raise DataError(
                f"choice source {source!r} is not one of {', '.join(CHOICE_SOURCES)}; "
                "re-run discover to rebuild the model"
            )
        return cls(value=data.get("value"), source=source, reason=str(data.get("reason", "")))


def group_centroids(labels: IntVector, block: FloatMatrix, n_groups: int) -> FloatMatrix:
    """Each group's unit mean of its members' rows of ``block`` (noise, -1, left out);
    shape (n_groups, dim)."""
    members = labels >= 0
    return unit_rows(pool_rows(labels[members], block[members], n_groups))


class GroupParts:
    """The group part of every answer, one rule for :class:`FittedState` and the answer
    path of ``usergroups assign`` / ``recommend`` (:mod:`usergroups.answers`), which reads
    only what one answer needs.

    Subclasses provide ``choices``, ``labels``, ``text_block``, ``recommender``, ``fine``,
    ``new_users``, ``ridge`` and ``cold_weight`` as :class:`FittedState` documents them.
    """

    choices: Mapping[str, Choice]
    labels: IntVector
    text_block: FloatMatrix
    recommender: Any
    fine: Any
    new_users: Any
    ridge: Any
    cold_weight: float

    @property
    def group_part_name(self) -> str:
        """What the group part of known users' rankings is: ``"groups"`` (the fine groups,
        else the segments) or ``"popularity"`` (global popularity, where validation found
        it beats the groups: issue 24); models saved before the choice rank by groups."""
        choice = self.choices.get("group_part")
        return str(choice.value) if choice is not None and choice.value else "groups"

    def _popularity_rows(self, n: int) -> FloatMatrix:
        return np.asarray(self.recommender.group_scores(np.full(n, -1)), dtype=np.float32)

    def group_part(self, rows: np.ndarray) -> FloatMatrix:
        """The group scores of known users (rows), shape (n, n_items): the mean of their
        fine groups' smoothed popularity when the model has fine groups, else their
        segment's (global popularity when :attr:`group_part_name` says so). The group part
        of every answer about a known user."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.group_part_name == "popularity":
            return self._popularity_rows(len(rows))
        if self.fine is not None:
            return np.asarray(self.fine.user_scores(rows), dtype=np.float32)
        return np.asarray(self.recommender.group_scores(self.labels[rows]), dtype=np.float32)

    def new_user_group_part(self, text_block: np.ndarray) -> FloatMatrix | None:
        """New users' fine-group scores by soft membership at their text's place among the
        fine groups' text centres (:attr:`fine_text_centroids`; no behaviour yet); None
        without fine groups (the new-user model then weights the segments by membership)."""
        if self.fine is None:
            return None
        scores = self.fine.soft_scores(text_block, centroids=self.fine_text_centroids)
        return np.asarray(scores, dtype=np.float32)

    @functools.cached_property
    def fine_text_centroids(self) -> FloatMatrix | None:
        """Each fine group's place in the text space (the unit mean of its members' text
        vectors, :meth:`~usergroups.recommend.fine_groups.FineGroups.text_centroids`):
        where a new user, known by text alone, is placed; None without fine groups."""
        if self.fine is None:
            return None
        return self.fine.text_centroids(self.text_block)

    @property
    def new_user_model(self) -> Any:
        """How new users' texts become item scores
        (:class:`~usergroups.recommend.new_users.NewUserModel`); models saved before it
        existed get their rule back (the most probable group, blended with the ridge)."""
        if self.new_users is not None:
            return self.new_users
        from usergroups.recommend.new_users import NewUserModel

        return NewUserModel.legacy(self.ridge, self.cold_weight)


@dataclass(frozen=True)
class FittedState(GroupParts):
    """Everything a fitted model learned and chose.

    The fused user vectors, the centroids and the assignment confidences are derived
    from the fields when the object is built (:meth:`__post_init__`), so they can never
    disagree with the text weight or the labels.

    Parameters
    ----------
    user_ids, item_ids : IdVocab
        External ids in index order.
    item_titles : dict of str to str
        Real titles (from the item metadata), for the items that have one.
    item_names : dict of str to str
        What to show for an item: given, names derived from the items' reviews
        (:func:`usergroups.profiling.derive_item_names`); stored, those names with every
        title laid over them, so an item's title always wins. Items in neither are shown by
        their id. :meth:`item_name` says where a name came from.
    labels : ndarray of shape (n_users,)
        Group of each user; -1 for noise.
    text_block : ndarray of shape (n_users, d)
        The text part of the user vectors: aligned vectors when the model has an
        alignment head, the frozen sentence vectors otherwise (unit rows; zero rows for
        users with nothing to pool). Every block is stored as given.
    semantic : ndarray of shape (n_users, d0)
        The frozen per-user sentence vectors (profiles' representative texts use them).
    behaviour : ndarray of shape (n_users, b)
        The behaviour part (unit rows; ``b`` may be 0).
    text_weight : float
        Share of the text part in the fused vector (:func:`usergroups.linalg.fuse_blocks`);
        must equal ``choices["text_weight"].value`` when that choice is given (the choice
        is what a model directory stores).
    seen : csr_matrix of shape (n_users, n_items)
        Binary interactions.
    recommender : GroupPopularity
    head : AlignmentHead or None
        Maps frozen sentence vectors into the aligned space.
    personal : PrunedEASE or None
    personal_weight, personal_shrinkage, cold_weight : float
    ridge : TextItemRidge or None
        The text → item model for new users.
    new_users : NewUserModel or None
        How a new user's text becomes item scores (the ridge is one of its parts); None
        in models saved before it existed, which keep the ridge blend of ``cold_weight``.
    choices : mapping of str to Choice
        One entry per name in :data:`CHOICE_NAMES`.
    adapter_dir : Path or None
        LoRA adapters of the encoder (``align.method = "lora"``).
    fine : FineGroups or None
        The fine groups behind every group-based answer
        (:class:`usergroups.recommend.fine_groups.FineGroups`); None when the segments'
        popularity is the group part (fine groups off, or a model saved before them).

    Attributes
    ----------
    user_vectors : ndarray of shape (n_users, d + b)
    centroids, aligned_centroids, semantic_centroids : ndarray of shape (n_groups, ...)
    confidence : ndarray of shape (n_users,)
    """

    user_ids: IdVocab
    item_ids: IdVocab
    item_titles: dict[str, str]
    labels: IntVector
    text_block: FloatMatrix
    semantic: FloatMatrix
    behaviour: FloatMatrix
    text_weight: float
    seen: sp.csr_matrix
    recommender: Any
    head: Any = None
    personal: Any = None
    personal_weight: float = 0.0
    personal_shrinkage: float = 0.0
    cold_weight: float = 0.0
    ridge: Any = None
    choices: Mapping[str, Choice] = field(default_factory=dict)
    adapter_dir: Path | None = None
    item_names: Mapping[str, str] = field(default_factory=dict)
    new_users: Any = None
    fine: Any = None
    # derived in __post_init__
    user_vectors: FloatMatrix = field(init=False, repr=False)
    centroids: FloatMatrix = field(init=False, repr=False)
    aligned_centroids: FloatMatrix = field(init=False, repr=False)
    semantic_centroids: FloatMatrix = field(init=False, repr=False)
    confidence: np.ndarray = field(init=False, repr=False)
    membership: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Check that the parts agree, store them in their canonical types, and derive the
        fused vectors, the centroids and each user's confidence."""
        self._check_parts()
        self._store_parts()
        self._derive()

    def _check_parts(self) -> None:
        """Raise :class:`DataError` when a part disagrees with the users, items or choices."""
        n_users = len(self.user_ids)
        labels = np.asarray(self.labels, dtype=np.int64)
        blocks: dict[str, np.ndarray] = {
            "labels": labels,
            "text_block": self.text_block,
            "semantic": self.semantic,
            "behaviour": self.behaviour,
        }
        for name, arr in blocks.items():
            if len(arr) != n_users:
                raise DataError(
                    f"FittedState.{name} has {len(arr)} rows for {n_users} users; "
                    "every per-user array needs one row per user"
                )
        if not 0.0 <= float(self.text_weight) <= 1.0:
            raise DataError(f"FittedState.text_weight={self.text_weight} is not in [0, 1]")
        chosen = self.choices.get("text_weight")
        # the choice is the truth (the model directory stores only it)
        if (
            chosen is not None
            and chosen.value is not None
            and abs(float(chosen.value) - float(self.text_weight)) > 1e-9
        ):
            raise DataError(
                f"FittedState.text_weight={self.text_weight} disagrees with "
                f"choices['text_weight'].value={chosen.value}; pass the chosen weight"
            )
        if self.seen.shape != (n_users, len(self.item_ids)):
            raise DataError(
                f"FittedState.seen has shape {self.seen.shape}, expected "
                f"({n_users}, {len(self.item_ids)})"
            )
        fine_labels = getattr(self.fine, "labels_", None)
        if fine_labels is not None and len(fine_labels) != n_users:
            raise DataError(
                f"FittedState.fine places {len(fine_labels)} users for {n_users} users; "
                "the fine groups must be fitted on the same users"
            )

    def _store_parts(self) -> None:
        """The parts as arrays of fixed dtypes and plain dicts (the dataclass is frozen)."""
        labels = np.asarray(self.labels, dtype=np.int64)
        put = object.__setattr__
        put(self, "labels", labels)
        # stored as given (callers pass unit rows): renormalising here would change the
        # last bits on every save/load round trip
        for name in ("text_block", "semantic", "behaviour"):
            put(self, name, np.asarray(getattr(self, name), dtype=np.float32))
        put(self, "seen", sp.csr_matrix(self.seen, dtype=np.float32))
        put(self, "text_weight", float(self.text_weight))
        put(self, "choices", dict(self.choices))
        put(self, "item_titles", {str(i): str(t) for i, t in self.item_titles.items() if t})
        # a title always wins over a name derived from reviews
        names = {str(i): str(n) for i, n in self.item_names.items() if n}
        put(self, "item_names", {**names, **self.item_titles})

    def _derive(self) -> None:
        """The fused vectors, the groups' centroids in each space, and each user's
        membership (softmax over the fused centroids) and confidence in their own group."""
        put = object.__setattr__
        n_users, labels = len(self.user_ids), self.labels
        vectors = fuse_blocks(self.text_block, self.behaviour, self.text_weight)
        n_groups = self.n_groups
        members = labels >= 0
        put(self, "user_vectors", vectors)
        put(self, "centroids", group_centroids(labels, vectors, n_groups))
        put(self, "aligned_centroids", group_centroids(labels, self.text_block, n_groups))
        put(self, "semantic_centroids", group_centroids(labels, self.semantic, n_groups))
        conf = np.zeros(n_users, dtype=np.float32)
        membership = np.zeros((n_users, n_groups), dtype=np.float32)
        if n_groups and members.any():
            probs = softmax_confidence(vectors[members] @ self.centroids.T)
            membership[members] = probs
            conf[members] = probs[np.arange(int(members.sum())), labels[members]]
        put(self, "confidence", conf)
        put(self, "membership", membership)

    # ------------------------------------------------------------------ derived
    @property
    def n_groups(self) -> int:
        """Number of groups (highest label + 1; noise does not count)."""
        labels = np.asarray(self.labels)
        return int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0

    @property
    def behaviour_dim(self) -> int:
        return int(self.behaviour.shape[1])

    def item_name(self, item_id: str) -> tuple[str, NameSource]:
        """What to show for ``item_id`` and where it comes from.

        Returns
        -------
        name : str
            The title, else the name derived from the item's reviews, else ``""`` (show the
            id).
        source : {"title", "reviews", ""}
        """
        if item_id in self.item_titles:
            return self.item_titles[item_id], "title"
        name = self.item_names.get(item_id, "")
        return name, "reviews" if name else ""

    def assignments(self) -> pd.DataFrame:
        """Every user's segment and soft membership (group -1 = noise).

        Columns ``user_id, group_id, confidence`` (the probability of ``group_id``),
        ``runner_up`` and ``runner_up_confidence`` (the next most probable segment: a
        user between two segments shows it), ``membership`` (the probability of each
        segment, in group order) and ``sub_interest_id`` (the user's fine group in the
        representative partition, -1 without fine groups).
        """
        order = np.argsort(-self.membership, axis=1, kind="stable")
        n_users = len(self.labels)
        has_second = self.membership.shape[1] > 1
        second = order[:, 1] if has_second else np.full(n_users, -1)
        second_p = self.membership[np.arange(n_users), second] if has_second else np.zeros(n_users)
        noise = self.labels < 0
        sub = (
            self.fine.sub_interests()
            if self.fine is not None
            else np.full(n_users, -1, dtype=np.int64)
        )
        return pd.DataFrame(
            {
                "user_id": self.user_ids.ids,
                "group_id": self.labels,
                "confidence": self.confidence,
                "runner_up": np.where(noise, -1, second).astype(np.int64),
                "runner_up_confidence": np.where(noise, 0.0, second_p).astype(np.float32),
                "membership": list(np.round(self.membership, 4)),
                "sub_interest_id": sub,
            }
        )

    def vector_group_part(
        self, text_block: np.ndarray, behaviour: np.ndarray, groups: np.ndarray
    ) -> FloatMatrix:
        """The group scores of users given by their blocks (users changed by events, a new
        user with known items) in segments ``groups``; shape (n, n_items)."""
        if self.group_part_name == "popularity":
            return self._popularity_rows(len(text_block))
        if self.fine is not None:
            vectors = self.fine_fuse(text_block, behaviour)
            return np.asarray(self.fine.vector_scores(vectors), dtype=np.float32)
        return np.asarray(
            self.recommender.group_scores(np.asarray(groups, dtype=np.int64)), dtype=np.float32
        )

    def fuse(self, text_block: np.ndarray, behaviour: np.ndarray) -> FloatMatrix:
        """User vectors of other users, fused with this model's text weight."""
        return fuse_blocks(text_block, behaviour, self.text_weight)

    @property
    def fine_text_weight(self) -> float:
        """The text weight of the fine groups' vectors (their own choice; models saved
        before it existed used the segments')."""
        choice = self.choices.get("fine_text_weight")
        if choice is None or choice.value is None:
            return self.text_weight
        return float(choice.value)

    def fine_fuse(self, text_block: np.ndarray, behaviour: np.ndarray) -> FloatMatrix:
        """Rows of both blocks fused as the fine groups' vectors (:attr:`fine_text_weight`):
        the one rule by which the fit, refit, the service and Spark place users in them."""
        return fuse_blocks(text_block, behaviour, self.fine_text_weight)

    def replace(self, **changes: Any) -> FittedState:
        """A copy with ``changes`` applied (derived fields recomputed)."""
        return dataclasses.replace(self, **changes)

    def choices_report(self) -> dict[str, dict[str, Any]]:
        """Every choice as JSON-ready dicts, in :data:`CHOICE_NAMES` order."""
        return {name: self.choices[name].to_dict() for name in CHOICE_NAMES if name in self.choices}
