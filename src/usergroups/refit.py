"""Refit a model on its data plus new events, moving only what the data moved.

By default (*anchored*) :func:`refit` keeps the old model's validated choices (the number
of groups, the text weight, the blends: :attr:`FittedState.choices`), refits the vector
blocks on the data plus the events (through the old alignment head), and clusters anchored
on the old groups (:class:`AnchoredGroups`): each old group's centre is the mean of its old
members' *new* vectors, every user goes to the nearest centre, and optional Lloyd
iterations let the centres follow the data further. Group ids are the old ids; a group
disappears only when no member is left (or when it shrank below
``clustering.min_group_size``, as the fit's post-processing would fold it).
:class:`RefitReport` names every user who moved and why.

With ``reselect=True`` (or when the config now asks for another number of groups) the
refit re-runs the whole fit, choices included, and matches the new groups to the old ones
so that every matched group keeps its old id:

1. the *overlap* of two groups is the Jaccard index of their members among the users
   that both fits know (new users from the events are not counted);
2. the cosine of the groups' centroids in the encoder's space (the same space in both
   fits, unlike the behaviour block, whose SVD axes change) breaks ties;
3. a Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`) maximises the
   total; a pair is kept only when its overlap reaches ``min_overlap``.

Unmatched new groups get fresh ids (never an id used before, even one that disappeared);
unmatched old groups are reported as gone. :class:`RefitReport` also names the groups
that split (their members went to several new groups) and merged (several old groups'
members came together).

Examples
--------
>>> from usergroups import DiscoveryConfig, GroupDiscovery
>>> from usergroups.testing import make_planted
>>> planted = make_planted(n_users=90, n_groups=3, random_state=0)
>>> cfg = DiscoveryConfig().with_overrides(
...     {"embedding.model": "hashing:64", "embedding.use_cache": False,
...      "clustering.n_groups": 3})
>>> old = GroupDiscovery(cfg).fit(planted.dataset)
>>> new, report = refit(old, planted.dataset, random_state=1)
>>> report.share_kept, report.new, report.gone, report.mode
(1.0, [], [], 'anchored')
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from usergroups.data import Dataset, build_dataset
from usergroups.errors import DataError, NotFittedError
from usergroups.fusion import l2_normalise
from usergroups.linalg import fuse_blocks, pool_rows, unit_rows

__all__ = [
    "EVENT_COLUMNS",
    "MOVE_REASONS",
    "AnchoredGroups",
    "RefitReport",
    "anchored_labels",
    "compare_groups",
    "match_groups",
    "merge_events",
    "refit",
    "relabel",
    "stable_ids",
]

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("event_id", "user_id", "item_id", "rating", "text", "timestamp")
"""Columns of an event table (``rating``, ``text`` and ``timestamp`` may be empty)."""

_TIE_BREAK = 1e-3
"""Weight of the centroid cosine next to the overlap: enough to break ties, never more."""

RefitMode = Literal["anchored", "reselect"]
MoveReason = Literal[
    "new user",
    "new events for this user",
    "old group emptied",
    "group's centre moved",
    "groups re-selected",
]
MOVE_REASONS: tuple[MoveReason, ...] = (
    "new user",
    "new events for this user",
    "old group emptied",
    "group's centre moved",
    "groups re-selected",
)
"""Why a user's group changed, most specific first (a user gets the first that applies):
a user the old model did not know; a user with new events; a member of a group that was
emptied (folded below ``clustering.min_group_size``); in an anchored refit, anyone else
(the centres moved because other users' data or the vector space moved); in a reselecting
refit, anyone else (the groups were fitted anew)."""

MAX_MOVES_IN_METRICS = 1000
"""``metrics.json`` lists at most this many moves (``n_moves`` gives the total);
``refit.json`` lists them all."""

RESELECT_ABOVE = 0.2
"""Share of known users moved above which an anchored refit recommends ``--reselect``: the
data moved so much that the old choices (number of groups, weights) may no longer fit."""

DEFAULT_N_ITER = 0
"""Lloyd iterations of an anchored refit. None by default: the centres already follow the
data (each is its members' mean in the new space), and on Amazon MI with 10 new events three
iterations moved 24 users against 2 without (hashing encoder)."""


# ------------------------------------------------------------------------- anchoring
def anchored_labels(
    X: np.ndarray,
    anchors: np.ndarray,
    *,
    n_iter: int = DEFAULT_N_ITER,
    min_group_size: int = 1,
    sizes_before: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Assign users to groups anchored on their old groups (deterministic, k-means rule).

    Each old group's centre is the mean of its old members' rows of ``X`` (the *new*
    vectors, so the centres live in the new space whatever rotated); every user goes to the
    nearest centre (squared Euclidean distance, the rule k-means assigns by), then up to
    ``n_iter`` Lloyd iterations move the centres to their members' mean and reassign.
    A group that loses members and falls below ``min_group_size`` is folded: its members go
    to their next-nearest group (the fit's post-processing would not keep it either). A
    group keeps its id; it disappears only when no member is left.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    anchors : ndarray of shape (n_users,)
        Old group of each user (ids >= 0); any negative value for users with no old group
        (new users, noise): they only join.
    n_iter : int
        Lloyd iterations after the anchored assignment (0: the anchored centres only).
    min_group_size : int
        Groups that shrink below this are folded (groups already that small stay).
    sizes_before : ndarray of shape (n_old_groups,), optional
        Sizes of the old groups (members that left the data count); defaults to the
        anchors' counts.

    Returns
    -------
    labels : ndarray of shape (n_users,)
        Group of each user, in the anchors' ids.
    centroids : ndarray of shape (n_groups, n_features)
        Mean of each group's members (zero rows for empty ids).
    folded : list of int
        Ids of the groups folded for being too small.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])
    >>> labels, _, _ = anchored_labels(X, np.array([0, 0, 1, 1, -2]))
    >>> labels.tolist()
    [0, 0, 1, 1, 1]

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 58 lines.
    """
    X = np.asarray(X, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.int64)
    if anchors.shape != (len(X),):
        raise DataError(
            f"anchors has shape {anchors.shape} for {len(X)} users; pass one old group per "
            "row of X (negative for users without one)"
        )
    if n_iter < 0:
        raise DataError(f"n_iter={n_iter} must be >= 0")
    n_groups = int(anchors.max()) + 1 if len(anchors) and anchors.max() >= 0 else 0
    if n_groups == 0:
        return np.full(len(X), -1, dtype=np.int64), np.zeros((0, X.shape[1])), []
    alive = np.bincount(anchors[anchors >= 0], minlength=n_groups) > 0
    before = np.zeros(n_groups, dtype=np.int64)
    if sizes_before is None:
        before = np.bincount(anchors[anchors >= 0], minlength=n_groups)
    else:
        known = np.asarray(sizes_before, dtype=np.int64)[:n_groups]
        before[: len(known)] = known
    folded: list[int] = []

    def centres(labels: np.ndarray) -> np.ndarray:
        members = labels >= 0
        return np.asarray(pool_rows(labels[members], X[members], n_groups), dtype=np.float64)

    def assign(c: np.ndarray) -> np.ndarray:
        # ||x - c||^2 up to the constant ||x||^2; dead ids can never win
        dist = (c * c).sum(axis=1)[None, :] - 2.0 * (X @ c.T)
        dist[:, ~alive] = np.inf
        return np.asarray(dist.argmin(axis=1), dtype=np.int64)

    labels = assign(centres(anchors))
    for _ in range(n_iter):
        alive &= np.bincount(labels, minlength=n_groups) > 0
        nxt = assign(centres(labels))
        if np.array_equal(nxt, labels):
            break
        labels = nxt
    # fold the smallest shrunken group first, one at a time: folding one can rescue another
    while True:
        sizes = np.bincount(labels, minlength=n_groups)
        alive &= sizes > 0
        small = np.flatnonzero(alive & (sizes < min_group_size) & (sizes < before))
        if len(small) == 0 or int(alive.sum()) <= 1:
            break
        g = int(small[np.argmin(sizes[small])])
        alive[g] = False
        folded.append(g)
        labels = assign(centres(labels))
    return labels, centres(labels).astype(np.float32), sorted(folded)


class AnchoredGroups:
    """A clusterer that keeps old groups: :func:`anchored_labels` as an estimator.

    What :func:`refit` passes to :class:`~usergroups.pipeline.GroupDiscovery` as its
    ``clusterer``, so the fit's own stages (vectors, alignment, recommender, profiles) run
    unchanged and only the grouping is anchored.

    The anchors belong to the fit's users (one per row of the dataset, in
    ``dataset.user_ids`` order; :func:`refit` maps them by user id). The fit also
    re-clusters *subsets* of its users (the validation carve's known users, the stability
    resamples), passing only their vectors: their user ids are unknown here, so they cannot
    be anchored, and ``fallback`` (the configured clusterer with the kept number of groups)
    clusters them afresh, as an ordinary fit would; the stability of an anchored group is
    then whether a fresh clustering finds it again.

    Parameters
    ----------
    anchors : ndarray of shape (n_users,)
        Old group of each of the fit's users (negative: none).
    n_groups : int, optional
        Accepted so the fit can set it; the anchors decide the groups.
    n_iter, min_group_size : int
    sizes_before : ndarray, optional
        See :func:`anchored_labels`.
    fallback : estimator, optional
        Clusters an ``X`` with another number of rows than ``anchors`` (a subset of the
        users); without it such a fit raises :class:`~usergroups.errors.DataError`.
    random_state : int, optional
        Seed given to ``fallback`` (the fit's resamples set it per run).

    Attributes
    ----------
    labels_ : ndarray of shape (n_users,)
    centroids_ : ndarray of shape (n_groups, n_features)
    folded_ : list of int
    """

    def __init__(
        self,
        anchors: np.ndarray | None = None,
        *,
        n_groups: int | None = None,
        n_iter: int = DEFAULT_N_ITER,
        min_group_size: int = 1,
        sizes_before: np.ndarray | None = None,
        fallback: Any = None,
        random_state: int | None = None,
    ) -> None:
        self.anchors = anchors
        self.n_groups = n_groups
        self.n_iter = n_iter
        self.min_group_size = min_group_size
        self.sizes_before = sizes_before
        self.fallback = fallback
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "anchors": self.anchors,
            "n_groups": self.n_groups,
            "n_iter": self.n_iter,
            "min_group_size": self.min_group_size,
            "sizes_before": self.sizes_before,
            "fallback": self.fallback,
            "random_state": self.random_state,
        }

    def set_params(self, **params: Any) -> Self:
        for key, value in params.items():
            if key not in self.get_params():
                raise DataError(
                    f"AnchoredGroups has no parameter {key!r}; it has {sorted(self.get_params())}"
                )
            setattr(self, key, value)
        return self

    def fit(self, X: np.ndarray, y: None = None) -> Self:
        if self.anchors is None:
            raise DataError("AnchoredGroups needs anchors: the old group of every user")
        if len(X) != len(self.anchors) and self.fallback is not None:
            return self._fit_subset(X)
        self.labels_, self.centroids_, self.folded_ = anchored_labels(
            X,
            self.anchors,
            n_iter=self.n_iter,
            min_group_size=self.min_group_size,
            sizes_before=self.sizes_before,
        )
        return self

    def _fit_subset(self, X: np.ndarray) -> Self:
        """Cluster a subset of the users afresh with ``fallback`` (see the class doc)."""
        from sklearn.base import clone

        model = clone(self.fallback)
        params = model.get_params() if hasattr(model, "get_params") else {}
        key = next((p for p in ("random_state", "base__random_state") if p in params), None)
        if key is not None and self.random_state is not None:
            model.set_params(**{key: int(self.random_state)})
        model.fit(X)
        self.labels_ = np.asarray(model.labels_, dtype=np.int64)
        self.centroids_ = np.asarray(getattr(model, "centroids_", np.zeros((0, X.shape[1]))))
        self.folded_ = [int(g) for g in getattr(model, "folded_", [])]
        return self


# --------------------------------------------------------------------------- matching
def match_groups(
    old_labels: np.ndarray,
    new_labels: np.ndarray,
    *,
    old_centroids: np.ndarray | None = None,
    new_centroids: np.ndarray | None = None,
    min_overlap: float = 0.2,
) -> dict[int, int]:
    """Match new groups to old ones by member overlap (Hungarian assignment).

    Parameters
    ----------
    old_labels, new_labels : ndarray of shape (n_users,)
        Old and new group of the same users (users unknown to the old fit: any negative
        value; noise: -1).
    old_centroids : ndarray of shape (n_old_groups, dim), optional
    new_centroids : ndarray of shape (n_new_groups, dim), optional
        Centroids in one shared space; their cosine breaks overlap ties.
    min_overlap : float
        Smallest Jaccard index of a kept pair.

    Returns
    -------
    dict
        ``new group -> old group`` for every matched new group.

    Examples
    --------
    >>> match_groups(np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]))
    {0: 1, 1: 0}
    """
    old_labels = np.asarray(old_labels, dtype=np.int64)
    new_labels = np.asarray(new_labels, dtype=np.int64)
    if old_labels.shape != new_labels.shape:
        raise DataError(
            f"old_labels and new_labels must have the same shape; got {old_labels.shape} "
            f"and {new_labels.shape}"
        )
    n_old = int(old_labels.max()) + 1 if old_labels.size and old_labels.max() >= 0 else 0
    n_new = int(new_labels.max()) + 1 if new_labels.size and new_labels.max() >= 0 else 0
    if n_old == 0 or n_new == 0:
        return {}
    both = (old_labels >= 0) & (new_labels >= 0)
    counts = np.zeros((n_old, n_new), dtype=np.float64)
    np.add.at(counts, (old_labels[both], new_labels[both]), 1.0)
    old_size = np.bincount(old_labels[old_labels >= 0], minlength=n_old).astype(np.float64)
    new_size = np.bincount(new_labels[new_labels >= 0], minlength=n_new).astype(np.float64)
    union = old_size[:, None] + new_size[None, :] - counts
    jaccard = np.divide(counts, union, out=np.zeros_like(counts), where=union > 0)
    score = jaccard.copy()
    if old_centroids is not None and new_centroids is not None:
        oc = l2_normalise(np.asarray(old_centroids)[:n_old])
        nc = l2_normalise(np.asarray(new_centroids)[:n_new])
        if oc.shape[1] == nc.shape[1] and len(oc) == n_old and len(nc) == n_new:
            score += _TIE_BREAK * (oc @ nc.T)
    rows, cols = linear_sum_assignment(score, maximize=True)
    pairs = zip(rows, cols, strict=True)
    return dict(sorted((int(c), int(r)) for r, c in pairs if jaccard[r, c] >= min_overlap))


@dataclass
class RefitReport:
    """What a refit changed, in stable group ids.

    Attributes
    ----------
    kept : list of dict
        ``{"group_id", "overlap", "size_before", "size_after"}`` per group that kept its id.
    new : list of dict
        ``{"group_id", "size", "from"}``: groups with a fresh id; ``from`` counts where the
        members were before (``"new_users"`` for users the old model did not know).
    gone : list of int
        Old ids no new group took.
    split : list of dict
        ``{"group_id", "into"}``: old groups at least ``share`` of whose members went to
        each of two or more new groups.
    merged : list of dict
        ``{"group_id", "from"}``: new groups that took at least ``share`` of their known
        members from each of two or more old groups.
    n_users_before, n_users_after, n_users_kept_group : int
    share_kept : float
        Share of the users known to both fits that kept their group id.
    next_group_id : int
        The first id a later refit may hand out.
    events_seq : int
        Sequence number of the last event included (0 without an event store).
    n_events : int
    mode : {"anchored", "reselect"}
        Anchored on the old groups with the old choices, or fitted anew and matched.
    moves : list of dict
        ``{"user_id", "old_group", "new_group", "reason"}`` for every known user whose
        group changed and every new user (``old_group`` None), sorted by reason
        (:data:`MOVE_REASONS` order), then user id.
    n_moves : int
        Length of the full ``moves`` list (``to_dict`` may cap the list).
    moves_by_reason : dict of str to int
    share_moved : float
        Share of the known users whose group changed (``1 - share_kept``).
    reselect_recommended : bool
        An anchored refit moved more than :data:`RESELECT_ABOVE` of the known users: the
        data moved a lot, and ``reselect=True`` (``--reselect``) re-chooses the settings.
    folded : list of int
        Groups emptied for falling below ``clustering.min_group_size``.
    users_left : list of str
        Users of the old model missing from the new data (dropped from the log or by the
        data's filters, such as a minimum number of interactions): they are simply gone;
        an old group none of whose users is left is in ``gone``. Sorted.
    n_users_left : int
        Length of the full ``users_left`` list (``to_dict`` may cap the list).
    """

    kept: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    split: list[dict[str, Any]] = field(default_factory=list)
    merged: list[dict[str, Any]] = field(default_factory=list)
    n_users_before: int = 0
    n_users_after: int = 0
    n_users_kept_group: int = 0
    share_kept: float = 1.0
    next_group_id: int = 0
    events_seq: int = 0
    n_events: int = 0
    mode: RefitMode = "anchored"
    moves: list[dict[str, Any]] = field(default_factory=list)
    n_moves: int = 0
    moves_by_reason: dict[str, int] = field(default_factory=dict)
    share_moved: float = 0.0
    reselect_recommended: bool = False
    folded: list[int] = field(default_factory=list)
    users_left: list[str] = field(default_factory=list)
    n_users_left: int = 0

    def to_dict(self, max_moves: int | None = MAX_MOVES_IN_METRICS) -> dict[str, Any]:
        """JSON-ready; ``moves`` and ``users_left`` hold at most ``max_moves`` entries
        (None: all)."""
        out = asdict(self)
        if max_moves is not None:
            out["moves"] = out["moves"][:max_moves]
            out["users_left"] = out["users_left"][:max_moves]
        return out


def compare_groups(
    old_labels: np.ndarray,
    new_labels: np.ndarray,
    *,
    share: float = 0.2,
    min_overlap: float = 0.2,
) -> RefitReport:
    """Describe how groups changed between two labelings that share their ids.

    Parameters
    ----------
    old_labels : ndarray of shape (n_users,)
        Old group of each user of the new fit; -2 for users the old model did not know.
    new_labels : ndarray of shape (n_users,)
        New group, already in stable ids.
    share : float
        A group splits (merges) when at least this share of its members goes to (comes
        from) each of two or more groups.
    min_overlap : float
        Kept groups below this overlap are reported as new and their old id as gone.
    """
    old_labels = np.asarray(old_labels, dtype=np.int64)
    new_labels = np.asarray(new_labels, dtype=np.int64)
    known = old_labels > -2
    old_ids = sorted({int(g) for g in old_labels[known & (old_labels >= 0)]})
    new_ids = sorted({int(g) for g in new_labels[new_labels >= 0]})
    report = RefitReport(
        n_users_before=int(known.sum()),
        n_users_after=len(new_labels),
    )
    kept_mask = known & (old_labels == new_labels)
    report.n_users_kept_group = int(kept_mask.sum())
    report.share_kept = round(float(kept_mask.sum() / max(int(known.sum()), 1)), 6)
    for h in new_ids:
        members = new_labels == h
        before = known & (old_labels == h)
        inter = int((members & before).sum())
        union = int((members | before).sum() - (members & ~known).sum())
        overlap = inter / union if union else 0.0
        if h in old_ids and overlap >= min_overlap:
            report.kept.append(
                {
                    "group_id": h,
                    "overlap": round(overlap, 4),
                    "size_before": int(before.sum()),
                    "size_after": int(members.sum()),
                }
            )
            continue
        origin: dict[str, int] = {}
        for g in old_labels[members]:
            key = "new_users" if g == -2 else ("noise" if g == -1 else str(int(g)))
            origin[key] = origin.get(key, 0) + 1
        report.new.append({"group_id": h, "size": int(members.sum()), "from": origin})
    kept_ids = {k["group_id"] for k in report.kept}
    report.gone = [g for g in old_ids if g not in kept_ids]
    for g in old_ids:
        dest = new_labels[known & (old_labels == g)]
        dest = dest[dest >= 0]
        if len(dest):
            ids, n = np.unique(dest, return_counts=True)
            big = [int(i) for i, c in zip(ids, n, strict=True) if c / len(dest) >= share]
            if len(big) >= 2:
                report.split.append({"group_id": g, "into": big})
    for h in new_ids:
        src = old_labels[known & (new_labels == h)]
        src = src[src >= 0]
        if len(src):
            ids, n = np.unique(src, return_counts=True)
            big = [int(i) for i, c in zip(ids, n, strict=True) if c / len(src) >= share]
            if len(big) >= 2:
                report.merged.append({"group_id": h, "from": big})
    return report


def stable_ids(
    reference: np.ndarray,
    raw: np.ndarray,
    *,
    old_centroids: np.ndarray | None = None,
    new_centroids: np.ndarray | None = None,
    next_group_id: int = 0,
    min_overlap: float = 0.2,
) -> dict[int, int]:
    """Stable id of every new group: its match's old id, or a fresh one.

    Parameters
    ----------
    reference : ndarray of shape (n_users,)
        Old group of each user of the new fit (-2 for users the old model did not know).
    raw : ndarray of shape (n_users,)
        The new fit's groups.
    next_group_id : int
        First fresh id; fresh ids go to the larger unmatched groups first.

    Returns
    -------
    dict
        ``new group -> stable id`` for every group of ``raw``.
    """
    reference = np.asarray(reference, dtype=np.int64)
    raw = np.asarray(raw, dtype=np.int64)
    # only users the old model knew say which old group a new one continues
    known = reference > -2
    matched = match_groups(
        reference[known],
        raw[known],
        old_centroids=old_centroids,
        new_centroids=new_centroids,
        min_overlap=min_overlap,
    )
    n_raw = int(raw.max()) + 1 if raw.size and raw.max() >= 0 else 0
    fresh = max(int(next_group_id), int(reference.max()) + 1 if reference.size else 0)
    sizes = np.bincount(raw[raw >= 0], minlength=n_raw)
    out: dict[int, int] = {}
    for g in sorted(range(n_raw), key=lambda g: (-sizes[g], g)):
        if g in matched:
            out[g] = matched[g]
        else:
            out[g] = fresh
            fresh += 1
    return dict(sorted(out.items()))


def relabel(model: Any, mapping: dict[int, int]) -> None:
    """Rename a fitted model's groups in place (``old id -> new id``; noise stays -1).

    Labels, the recommender's per-group counts, the centroids, the assignments and the
    profiles follow. Ids left unused (a group that disappeared) are empty rows: size 0,
    zero centroid, global popularity.
    """
    from usergroups.recommend import GroupPopularity

    raw = np.asarray(model.labels_, dtype=np.int64)
    n_raw = int(raw.max()) + 1 if raw.size and raw.max() >= 0 else 0
    lookup = np.array([mapping[g] for g in range(n_raw)], dtype=np.int64)
    labels = np.where(raw >= 0, lookup[np.maximum(raw, 0)] if n_raw else -1, -1)
    n_out = int(lookup.max()) + 1 if n_raw else 0
    rec = model.recommender_
    counts = np.zeros((n_out, rec.counts_.shape[1]), dtype=np.float32)
    sizes = np.zeros(n_out, dtype=np.float32)
    counts[lookup] = rec.counts_[:n_raw]
    sizes[lookup] = rec.sizes_[:n_raw]
    recommender = GroupPopularity.from_arrays(counts, sizes, rec.popularity_, rec.smoothing)
    # the state is frozen: a relabelled copy replaces it (centroids, confidences and the
    # assignments are derived from the new labels)
    model.state_ = model.state_.replace(labels=labels.astype(np.int64), recommender=recommender)
    groups = model.groups_.copy()
    if "group_id" in groups and len(groups):
        groups["group_id"] = [mapping.get(int(g), int(g)) for g in groups["group_id"]]
        groups = groups.sort_values("group_id", kind="stable").reset_index(drop=True)
    model.groups_ = groups


# ----------------------------------------------------------------------------- events
def events_frame(records: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Events as a table with :data:`EVENT_COLUMNS` (missing optional columns are empty)."""
    df = pd.DataFrame(records).copy() if not isinstance(records, pd.DataFrame) else records.copy()
    for col in ("user_id", "item_id"):
        if col not in df:
            raise DataError(f"events need a {col} column; got columns {list(df.columns)}")
    for col in EVENT_COLUMNS:
        if col not in df:
            df[col] = None
    return df


def merge_events(dataset: Dataset, events: pd.DataFrame | None) -> Dataset:
    """The dataset plus the events' interactions and texts (duplicates: latest wins).

    Parameters
    ----------
    dataset : Dataset
    events : DataFrame, optional
        :data:`EVENT_COLUMNS`; each event is an interaction, and a text when it has one.
    """
    if events is None or len(events) == 0:
        return dataset
    ev = events_frame(events)
    inter = pd.concat(
        [
            dataset.interactions,
            pd.DataFrame(
                {
                    "user_id": ev["user_id"].astype(str).to_numpy(),
                    "item_id": ev["item_id"].astype(str).to_numpy(),
                    "rating": pd.to_numeric(ev["rating"], errors="coerce").to_numpy(np.float64),
                    "timestamp": pd.to_numeric(ev["timestamp"], errors="coerce").to_numpy(
                        np.float64
                    ),
                }
            ),
        ],
        ignore_index=True,
    )
    has_text = ev["text"].notna() & ev["text"].astype(str).str.strip().ne("")
    tx_new = ev.loc[has_text]
    texts = pd.concat(
        [
            dataset.texts,
            pd.DataFrame(
                {
                    "user_id": tx_new["user_id"].astype(str).to_numpy(),
                    "text": tx_new["text"].astype(str).to_numpy(),
                    "item_id": tx_new["item_id"].astype(str).to_numpy(),
                    "rating": pd.to_numeric(tx_new["rating"], errors="coerce").to_numpy(np.float64),
                    "timestamp": pd.to_numeric(tx_new["timestamp"], errors="coerce").to_numpy(
                        np.float64
                    ),
                }
            ),
        ],
        ignore_index=True,
    )
    items = dataset.items
    if items is not None:
        unknown = sorted(set(inter["item_id"]) - set(items["item_id"]))
        if unknown:
            # items seen only in events have no metadata yet; an empty row keeps them
            items = pd.concat(
                [items, pd.DataFrame({"item_id": unknown})], ignore_index=True
            ).fillna({"title": "", "categories": "", "description": ""})
    return build_dataset(inter, texts, items, dataset.users, name=dataset.name)


class _KeptHead:
    """The old model's alignment head as an aligner whose ``fit`` keeps it as it is.

    An anchored refit maps the new data through the head the groups were found with:
    retraining it on a new validation carve would move every user's text vector (and with
    it about one user in ten across a group boundary) although almost nothing changed.
    """

    def __init__(self, head: Any) -> None:
        self.head = head

    def fit(self, *args: Any, **kwargs: Any) -> _KeptHead:
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(self.head.transform(vectors))


# ------------------------------------------------------------------------------ refit
_CHOICE_SETTINGS = {
    "text_weight": "user_vectors.text_weight",
    "n_groups": "clustering.n_groups",
    "personal_model": "recommend.personal",
    "personal_weight": "recommend.personal_weight",
    "personal_shrinkage": "recommend.personal_shrinkage",
    "ease_keep": "recommend.ease_keep",
    "cold_weight": "recommend.cold_weight",
    "cold_spread_weight": "recommend.cold_spread_weight",
    "cold_top_items": "recommend.cold_top_items",
    "fine_k": "clustering.fine_k",
    "fine_partitions": "clustering.fine_partitions",
    "fine_text_weight": "clustering.fine_text_weight",
}
"""The config setting of every choice a refit keeps (``ridge_l2`` has none: it is
chosen again from its grid, which costs little)."""


def kept_choices(model: Any) -> dict[str, Any]:
    """Config overrides that fix ``model``'s choices (validated or defaulted) for a refit.

    Settings the config already fixed, values the data forced, and choices without a value
    (no personal model, a clusterer that finds its own number), are left to the config.
    The overrides steer the refit's fit only: the refitted model keeps the old config and
    the old choices with their sources (:func:`_restore_choices`), so a later
    ``refit --reselect`` chooses them again.
    """
    overrides: dict[str, Any] = {}
    for name, setting in _CHOICE_SETTINGS.items():
        choice = model.state_.choices.get(name)
        if choice is None or choice.value is None or choice.source in ("config", "data"):
            continue
        value = choice.value
        if isinstance(value, str):  # a model's name (personal_model)
            overrides[setting] = value
            continue
        integer = name in ("n_groups", "ease_keep", "cold_top_items", "fine_k", "fine_partitions")
        overrides[setting] = int(value) if integer else float(value)
    return overrides


def _restore_choices(new: Any, old: Any, config: Any, kept: dict[str, Any]) -> None:
    """Give the anchored refit's model the config it was asked for and the old choices.

    The fit ran with ``kept`` (:func:`kept_choices`) as config overrides, so its state says
    those choices came from the config. A choice lives in the state, never in the config:
    ``new`` gets ``config`` back (its ``"auto"`` settings intact) and the old model's
    :class:`~usergroups.fitted.Choice` of every kept setting (same value, source and
    reason), in the state and in ``metrics_``, unless the new data changed its value.
    """
    by_setting = {setting: name for name, setting in _CHOICE_SETTINGS.items()}
    names = [by_setting[setting] for setting in kept]
    choices = dict(new.state_.choices)
    for name in names:
        previous, refitted = old.state_.choices[name], choices.get(name)
        if refitted is not None and refitted.value != previous.value:
            # the new data decided otherwise (e.g. a catalogue grown past EASE's limit has
            # no ease_keep): the refit's own choice stands
            continue
        choices[name] = previous
    new.config = config
    new.state_ = new.state_.replace(choices=choices)
    metrics = new.metrics_
    metrics["choices"] = new.state_.choices_report()
    alignment = metrics.get("alignment")
    if isinstance(alignment, dict) and "choices" in alignment:
        alignment["choices"] = {**alignment["choices"], **metrics["choices"]}
    fallbacks = list(metrics.get("fallbacks", []))
    for name in names:
        line = f"{name}: {choices[name].reason}"
        if choices[name].source == "default" and line not in fallbacks:
            fallbacks.append(line)
    metrics["fallbacks"] = fallbacks


def _anchors(model: Any, user_ids: np.ndarray) -> np.ndarray:
    """Old group of each user in ``user_ids``, by user id (-2 for users the old model did
    not know; old users missing from ``user_ids`` get nothing)."""
    old_index = {str(u): i for i, u in enumerate(model.user_ids_.ids.tolist())}
    rows = np.array([old_index.get(str(u), -1) for u in user_ids], dtype=np.int64)
    return np.where(rows >= 0, model.labels_[np.maximum(rows, 0)], -2).astype(np.int64)


def _fresh_clusterer(cfg: Any) -> Any:
    """The configured clusterer with the kept number of groups: what re-clusters subsets of
    the users in an anchored refit (:class:`AnchoredGroups`)."""
    from usergroups.clustering import make_clusterer

    if cfg.clustering.method == "hdbscan":
        cfg = cfg.with_overrides({"clustering.n_groups": "auto"})  # it finds its own number
    return make_clusterer(cfg.clustering, cfg.random_state)


def _moves(
    user_ids: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    active: set[str],
    emptied: set[int],
    mode: RefitMode,
) -> list[dict[str, Any]]:
    """Every user whose group changed, and every new user, with the reason (see
    :data:`MOVE_REASONS`)."""
    moved = (reference != labels) | (reference == -2)
    out = []
    for u, old, new in zip(user_ids[moved], reference[moved], labels[moved], strict=True):
        uid = str(u)
        reason: MoveReason
        if old == -2:
            reason = "new user"
        elif uid in active:
            reason = "new events for this user"
        elif int(old) in emptied:
            reason = "old group emptied"
        elif mode == "anchored":
            reason = "group's centre moved"
        else:
            reason = "groups re-selected"
        out.append(
            {
                "user_id": uid,
                "old_group": None if old == -2 else int(old),
                "new_group": int(new),
                "reason": reason,
            }
        )
    order: dict[str, int] = {r: k for k, r in enumerate(MOVE_REASONS)}
    out.sort(key=lambda m: (order[str(m["reason"])], m["user_id"]))
    return out


def refit(
    model: Any,
    dataset: Dataset,
    events: pd.DataFrame | None = None,
    *,
    events_seq: int = 0,
    random_state: int | None = None,
    min_overlap: float = 0.2,
    encoder: Any = None,
    reselect: bool = False,
    n_iter: int = DEFAULT_N_ITER,
) -> tuple[Any, RefitReport]:
    """Fit ``model`` again on ``dataset`` plus ``events``, moving only what the data moved.

    Anchored (the default): the old model's choices are kept, the vector blocks are fitted
    on the new data, and users are grouped by :class:`AnchoredGroups` on the old groups,
    so group ids are the old ids. ``reselect=True`` fits the config anew (choices, number
    of groups and clustering included) and matches the new groups to the old ones
    (:func:`stable_ids`); a config whose ``clustering.n_groups`` differs from the old
    model's also reselects, since the old groups cannot anchor another number.

    Parameters
    ----------
    model : GroupDiscovery
        The fitted model whose groups are kept.
    dataset : Dataset
        The data the model was fitted on (the log).
    events : DataFrame, optional
        New events (:data:`EVENT_COLUMNS`).
    events_seq : int
        Sequence number of the last event included; stored in the report so a server
        replays only later events on top of the new model.
    random_state : int, optional
        Overrides the config's seed (anchoring and matching make ids independent of it).
    min_overlap : float
        See :func:`match_groups` (reselecting refits).
    encoder : Encoder, optional
        Reuse a loaded encoder.
    reselect : bool
        Choose the settings and the groups again (see above).
    n_iter : int
        Lloyd iterations of an anchored refit (:func:`anchored_labels`).

    Returns
    -------
    model : GroupDiscovery
        The new model; ``metrics_["refit"]`` holds the report (at most
        :data:`MAX_MOVES_IN_METRICS` moves).
    report : RefitReport

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 47 lines.
    """
    if not hasattr(model, "labels_"):
        raise NotFittedError("refit needs a fitted model; load one with GroupDiscovery.load(dir)")
    data = merge_events(dataset, events)
    cfg = model.config
    if random_state is not None:
        cfg = cfg.with_overrides({"random_state": random_state})
    previous = (getattr(model, "metrics_", None) or {}).get("refit") or {}
    next_id = max(int(previous.get("next_group_id", 0)), model.n_groups_)
    # anchors are keyed by user id: one per user of the refit data, in its order (the rows
    # the fit clusters), whatever the old model's users were
    user_ids = np.asarray(data.user_ids.ids)
    reference = _anchors(model, user_ids)
    mode = _refit_mode(model, cfg, reference, reselect)
    folded: list[int] = []
    if mode == "anchored":
        new, folded = _refit_anchored(model, data, cfg, reference, encoder, n_iter)
    else:
        new = _refit_reselected(model, data, cfg, reference, encoder, next_id, min_overlap)
    if not np.array_equal(np.asarray(new.user_ids_.ids), user_ids):
        raise DataError("the refitted model's users are not the refit data's users")
    if "size" in new.groups_:
        # ids of groups that disappeared stay unused: their empty rows are not groups
        new.groups_ = new.groups_[new.groups_["size"] > 0].reset_index(drop=True)
    report = compare_groups(reference, new.labels_, min_overlap=min_overlap)
    new_max = int(new.labels_.max()) + 1 if len(new.labels_) else 0
    report.next_group_id = max(next_id, new_max)
    report.events_seq = int(events_seq)
    report.n_events = 0 if events is None else len(events)
    report.mode = mode
    report.folded = folded
    _add_moves(report, model, new, reference, events)
    new.metrics_["refit"] = report.to_dict()
    new.metrics_["n_groups"] = len(new.groups_)
    _log_refit(report)
    return new, report


def _refit_mode(model: Any, cfg: Any, reference: np.ndarray, reselect: bool) -> RefitMode:
    """``"reselect"`` when asked, or when the old groups cannot anchor the refit: the config
    asks for another number of groups, no user of the new data had a group, or the model is
    LoRA-aligned; else ``"anchored"``."""
    if reselect:
        return "reselect"
    asked = cfg.clustering.n_groups
    old_k = model.state_.choices.get("n_groups")
    if asked != "auto" and old_k is not None and old_k.value != asked:
        logger.info(
            "refit: the config asks for %s groups and the model has %s; choosing the groups "
            "again (reselect)",
            asked,
            old_k.value,
        )
        return "reselect"
    if not (reference >= 0).any():
        return "reselect"  # no old group to anchor on
    if cfg.align.method == "lora":
        # the LoRA adapters live with the encoder; keeping them is not supported yet
        logger.info("refit: a LoRA-aligned model is refitted with reselect")
        return "reselect"
    return "anchored"


def _refit_anchored(
    model: Any, data: Dataset, cfg: Any, reference: np.ndarray, encoder: Any, n_iter: int
) -> tuple[Any, list[int]]:
    """The anchored refit's model (old choices, old head, users grouped on their old groups
    by :class:`AnchoredGroups`) and the ids of the groups it folded."""
    from usergroups.pipeline import GroupDiscovery

    asked_config = cfg
    kept = kept_choices(model)
    cfg = cfg.with_overrides(kept)
    anchored = AnchoredGroups(
        reference,
        n_groups=max(model.n_groups_, 1),
        n_iter=n_iter,
        min_group_size=cfg.clustering.min_group_size,
        sizes_before=np.bincount(model.labels_[model.labels_ >= 0], minlength=model.n_groups_),
        fallback=_fresh_clusterer(cfg),
        random_state=cfg.random_state,
    )
    kept_head = None if model.head_ is None else _KeptHead(model.head_)
    new = GroupDiscovery(cfg, encoder=encoder, aligner=kept_head, clusterer=anchored).fit(data)
    # the anchors and the kept head belong to this refit, not to later fits
    new.clusterer = new.aligner = None
    if kept_head is not None:
        new.state_ = new.state_.replace(head=model.head_)
    _restore_choices(new, model, asked_config, kept)
    new.state_ = _keep_fine_groups(model.state_, new.state_)
    return new, [int(g) for g in new.metrics_.get("folded", [])]


def _refit_reselected(
    model: Any,
    data: Dataset,
    cfg: Any,
    reference: np.ndarray,
    encoder: Any,
    next_id: int,
    min_overlap: float,
) -> Any:
    """A fresh fit of ``cfg`` whose groups take the ids of the old groups they match
    (:func:`stable_ids`)."""
    from usergroups.pipeline import GroupDiscovery

    new = GroupDiscovery(cfg, encoder=encoder).fit(data)
    mapping = stable_ids(
        reference,
        new.labels_,
        old_centroids=model.semantic_centroids_,
        new_centroids=new.semantic_centroids_,
        next_group_id=next_id,
        min_overlap=min_overlap,
    )
    relabel(new, mapping)
    return new


def _add_moves(
    report: RefitReport,
    model: Any,
    new: Any,
    reference: np.ndarray,
    events: pd.DataFrame | None,
) -> None:
    """The users who left and the groups they emptied, every move with its reason, and the
    share moved (with the advice to reselect when it is large), into ``report``."""
    # old users missing from the new data are gone, and so is a group none of them is left in
    user_ids = np.asarray(new.user_ids_.ids)
    old_ids = np.asarray(model.user_ids_.ids).astype(str)
    report.users_left = sorted(set(old_ids.tolist()) - set(user_ids.astype(str).tolist()))
    report.n_users_left = len(report.users_left)
    still = set(reference[reference >= 0].tolist())
    emptied_by_data = {int(g) for g in np.unique(model.labels_[model.labels_ >= 0])} - still
    report.gone = sorted(set(report.gone) | emptied_by_data)
    active = set() if events is None or len(events) == 0 else set(map(str, events["user_id"]))
    report.moves = _moves(user_ids, reference, new.labels_, active, set(report.folded), report.mode)
    report.n_moves = len(report.moves)
    by_reason: dict[str, int] = {}
    for m in report.moves:
        by_reason[m["reason"]] = by_reason.get(m["reason"], 0) + 1
    report.moves_by_reason = by_reason
    report.share_moved = round(1.0 - report.share_kept, 6)
    report.reselect_recommended = report.mode == "anchored" and report.share_moved > RESELECT_ABOVE


def _log_refit(report: RefitReport) -> None:
    """One line of what the refit kept and moved; a warning when it moved too many users."""
    logger.info(
        "refit (%s): %d kept, %d new, %d gone, %.1f%% of users kept their group, %d moves",
        report.mode,
        len(report.kept),
        len(report.new),
        len(report.gone),
        100 * report.share_kept,
        report.n_moves,
    )
    if report.reselect_recommended:
        logger.warning(
            "refit moved %.1f%% of known users (above %.0f%%): the data moved a lot; refit "
            "with reselect=True (--reselect) to choose the number of groups and weights again",
            100 * report.share_moved,
            100 * RESELECT_ABOVE,
        )


def _keep_fine_groups(old: Any, new: Any) -> Any:
    """The new state with the old model's fine groups, anchored like the segments.

    Each old fine group's centre is recomputed as the mean of its old members' new fused
    vectors (users in both fits), every user is placed by the nearest of those centres
    (:func:`usergroups.linalg.nearest_rows`) and the groups' popularity is counted on the
    new data; a fine group none of whose members is left keeps no centre (nobody is placed
    in it). The old sizes and partitions stay, and so do their choices.
    """
    from usergroups.recommend.fine_groups import FineGroups

    choices = dict(new.choices)
    for name in ("fine_k", "fine_partitions", "fine_text_weight"):
        if name in old.choices:
            choices[name] = old.choices[name]
    if old.fine is None:
        return new.replace(fine=None, choices=choices)
    old_row = {str(u): i for i, u in enumerate(old.user_ids.ids.tolist())}
    rows = np.array([old_row.get(str(u), -1) for u in new.user_ids.ids], dtype=np.int64)
    both = rows >= 0
    fused = fuse_blocks(new.text_block, new.behaviour, old.fine_text_weight)
    centroids = np.zeros((old.fine.n_partitions, old.fine.n_fine, fused.shape[1]), dtype=np.float32)
    for p in range(old.fine.n_partitions):
        labels = old.fine.labels_[rows[both], p]
        placed = labels >= 0
        centroids[p] = unit_rows(pool_rows(labels[placed], fused[both][placed], old.fine.n_fine))
    fine = FineGroups(smoothing=old.fine.smoothing).fit(fused, new.seen, centroids)
    return new.replace(fine=fine, choices=choices)
