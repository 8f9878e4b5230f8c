"""Sub-interests: the fine groups nested under each segment, each with its own profile.

A segment is what people name; its sub-interests say what it is made of. They are the
fine groups of one representative partition of the ensemble
(:func:`usergroups.clustering.fine.representative_partition`), each nested under the
segment that holds most of its members. Each is profiled like a segment
(:func:`~usergroups.profiling.build_profiles`), but its keywords are contrasted against
its *sibling* sub-interests only: "what sets this part of the segment apart", not "what
sets it apart from everyone" (which its segment already says).

Examples
--------
>>> import numpy as np
>>> from usergroups.testing import make_planted
>>> planted = make_planted(n_users=80, n_groups=4, random_state=0)
>>> truth = planted.labels_for(planted.dataset.user_ids.ids)
>>> segments = truth // 2                  # two segments of two planted groups each
>>> table = build_sub_interests(planted.dataset, segments, truth, np.full(4, 0.9))
>>> table[["group_id", "sub_id"]].values.tolist()
[[0, 0], [0, 1], [1, 2], [1, 3]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from usergroups.data import Dataset
from usergroups.profiling.clean import PreparedTexts
from usergroups.profiling.profiles import build_profiles

__all__ = ["SUB_INTEREST_COLUMNS", "build_sub_interests", "parent_segments"]

SUB_INTEREST_COLUMNS = (
    "group_id",
    "sub_id",
    "size",
    "share",
    "stability",
    "unstable",
    "label",
    "keywords",
    "top_items",
    "top_item_titles",
)
"""Columns of the sub-interest table (``sub_interests.parquet``): ``share`` is the share of
the segment's users, ``stability`` the mean best Jaccard index with a group of each other
partition of the ensemble."""


def parent_segments(
    segments: npt.ArrayLike, fine: npt.ArrayLike, n_fine: int
) -> npt.NDArray[np.int64]:
    """The segment holding most of each fine group's members (-1 for an empty group);
    shape (n_fine,). Ties go to the lower segment id."""
    seg = np.asarray(segments, dtype=np.int64)
    sub = np.asarray(fine, dtype=np.int64)
    ok = (seg >= 0) & (sub >= 0)
    n_segments = int(seg.max()) + 1 if (seg >= 0).any() else 0
    out = np.full(n_fine, -1, dtype=np.int64)
    if not ok.any() or n_segments == 0:
        return out
    table = np.zeros((n_fine, n_segments), dtype=np.int64)
    np.add.at(table, (sub[ok], seg[ok]), 1)
    has = table.sum(axis=1) > 0
    out[has] = table[has].argmax(axis=1)
    return out


def build_sub_interests(
    dataset: Dataset,
    segments: npt.ArrayLike,
    fine: npt.ArrayLike,
    stability: npt.ArrayLike,
    *,
    min_stability: float = 0.6,
    n_keywords: int = 8,
    n_items: int = 5,
    min_support: int = 3,
    language: Literal["auto", "en", "zh"] = "auto",
    item_names: Mapping[str, str] | None = None,
    texts_memo: PreparedTexts | None = None,
) -> pd.DataFrame:
    """Profile each segment's sub-interests (see the module docstring).

    Parameters
    ----------
    dataset : Dataset
    segments : array-like of shape (n_users,)
        Each user's segment (-1: noise).
    fine : array-like of shape (n_users,)
        Each user's fine group in the representative partition (-1: nowhere).
    stability : array-like of shape (n_fine,)
        Each fine group's stability (NaN: not measured).
    min_stability : float
        Below it a sub-interest is marked ``unstable`` (shown, never hidden).
    n_keywords, n_items, min_support, language, item_names, texts_memo
        As :func:`~usergroups.profiling.build_profiles`; one ``texts_memo`` serves every
        segment's siblings (built here when not given).

    Returns
    -------
    DataFrame with :data:`SUB_INTEREST_COLUMNS`, by segment then sub-interest id; a
    sub-interest's members are its fine group's users inside its parent segment.
    """
    seg = np.asarray(segments, dtype=np.int64)
    sub = np.asarray(fine, dtype=np.int64)
    stab = np.asarray(stability, dtype=np.float64)
    n_fine = len(stab)
    parents = parent_segments(seg, sub, n_fine)
    rows: list[dict[str, object]] = []
    memo = texts_memo if texts_memo is not None else PreparedTexts.of(dataset.texts)
    for s in sorted(set(parents[parents >= 0].tolist())):
        children = np.flatnonzero(parents == s)
        local = np.full(len(seg), -1, dtype=np.int64)
        inside = (seg == s) & np.isin(sub, children)
        # consecutive ids among siblings: keywords are contrasted against them alone
        local[inside] = np.searchsorted(children, sub[inside])
        profiles = build_profiles(
            dataset,
            local,
            n_keywords=n_keywords,
            n_items=n_items,
            min_support=min_support,
            language=language,
            n_texts=0,
            n_categories=0,
            n_attribute_values=0,
            item_names=item_names,
            texts_memo=memo,
        )
        segment_size = max(int((seg == s).sum()), 1)
        for child, profile in zip(children, profiles, strict=True):
            value = float(stab[child])
            rows.append(
                {
                    "group_id": int(s),
                    "sub_id": int(child),
                    "size": int(profile.size),
                    "share": round(profile.size / segment_size, 4),
                    "stability": None if np.isnan(value) else round(value, 4),
                    "unstable": bool(not np.isnan(value) and value < min_stability),
                    "label": profile.label,
                    "keywords": list(profile.keywords),
                    "top_items": list(profile.top_items),
                    "top_item_titles": list(profile.top_item_titles),
                }
            )
    return pd.DataFrame(rows, columns=list(SUB_INTEREST_COLUMNS))
