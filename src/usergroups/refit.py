"""Refit a model on its data plus new events, keeping group ids stable.

A plain refit numbers groups by size, so "group 3" may mean something else after every
refit. :func:`refit` fits the same configuration on the data plus the events, then matches
the new groups to the old ones and gives every matched group its old id:

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
>>> report.share_kept, report.new, report.gone
(1.0, [], [])
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from usergroups.data import Dataset, build_dataset
from usergroups.errors import DataError, NotFittedError
from usergroups.fusion import l2_normalise

__all__ = [
    "EVENT_COLUMNS",
    "RefitReport",
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# ------------------------------------------------------------------------------ refit
def refit(
    model: Any,
    dataset: Dataset,
    events: pd.DataFrame | None = None,
    *,
    events_seq: int = 0,
    random_state: int | None = None,
    min_overlap: float = 0.2,
    encoder: Any = None,
) -> tuple[Any, RefitReport]:
    """Fit ``model``'s configuration on ``dataset`` plus ``events``, keeping group ids.

    Parameters
    ----------
    model : GroupDiscovery
        The fitted model whose group ids are kept.
    dataset : Dataset
        The data the model was fitted on (the log).
    events : DataFrame, optional
        New events (:data:`EVENT_COLUMNS`).
    events_seq : int
        Sequence number of the last event included; stored in the report so a server
        replays only later events on top of the new model.
    random_state : int, optional
        Overrides the config's seed (the matching makes ids independent of it).
    min_overlap : float
        See :func:`match_groups`.
    encoder : Encoder, optional
        Reuse a loaded encoder.

    Returns
    -------
    model : GroupDiscovery
        The new model; ``metrics_["refit"]`` holds the report.
    report : RefitReport
    """
    from usergroups.pipeline import GroupDiscovery

    if not hasattr(model, "labels_"):
        raise NotFittedError("refit needs a fitted model; load one with GroupDiscovery.load(dir)")
    data = merge_events(dataset, events)
    cfg = model.config
    if random_state is not None:
        cfg = cfg.with_overrides({"random_state": random_state})
    new = GroupDiscovery(cfg, encoder=encoder).fit(data)
    old_index = {str(u): i for i, u in enumerate(model.user_ids_.ids.tolist())}
    rows = np.array([old_index.get(str(u), -1) for u in new.user_ids_.ids], dtype=np.int64)
    reference = np.where(rows >= 0, model.labels_[np.maximum(rows, 0)], -2)
    previous = (getattr(model, "metrics_", None) or {}).get("refit") or {}
    next_id = max(int(previous.get("next_group_id", 0)), model.n_groups_)
    mapping = stable_ids(
        reference,
        new.labels_,
        old_centroids=model.semantic_centroids_,
        new_centroids=new.semantic_centroids_,
        next_group_id=next_id,
        min_overlap=min_overlap,
    )
    relabel(new, mapping)
    if "size" in new.groups_:
        # ids of groups that disappeared stay unused: their empty rows are not groups
        new.groups_ = new.groups_[new.groups_["size"] > 0].reset_index(drop=True)
    report = compare_groups(reference, new.labels_, min_overlap=min_overlap)
    new_max = int(new.labels_.max()) + 1 if len(new.labels_) else 0
    report.next_group_id = max(next_id, new_max)
    report.events_seq = int(events_seq)
    report.n_events = 0 if events is None else len(events)
    new.metrics_["refit"] = report.to_dict()
    new.metrics_["n_groups"] = len(new.groups_)
    logger.info(
        "refit: %d kept, %d new, %d gone, %.1f%% of users kept their group",
        len(report.kept),
        len(report.new),
        len(report.gone),
        100 * report.share_kept,
    )
    return new, report
