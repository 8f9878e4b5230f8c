"""Lift with its noise: a paired bootstrap of a ratio, and the overlap of top-n lists.

At our test sizes (a few hundred users) a lift of 1.1 against 1.3 can be noise: a
bootstrap over the test users gives 95 % intervals about 0.3 wide. These helpers give
every lift its interval (the per-user NDCG comes from
:func:`~usergroups.evaluation.evaluate_scores`'s ``per_user``), and measure how stable what we
recommend is: the overlap of each user's top-10 between two fits on different subsamples.

Examples
--------
>>> import numpy as np
>>> ours, base = np.array([0.2, 0.4, 0.0, 0.6]), np.array([0.1, 0.2, 0.1, 0.2])
>>> out = ratio_interval(ours, base, n_resamples=200, random_state=0)
>>> round(out["value"], 2), out["low"] <= out["value"] <= out["high"]
(2.0, True)
>>> top_overlap(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]))
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._typing import IntVector
from usergroups.evaluation import metrics as m
from usergroups.evaluation.evaluate import ScoreFunction, _masked_scores
from usergroups.evaluation.splits import Split

__all__ = ["ranked_top", "ratio_interval", "top_overlap"]

N_RESAMPLES = 1000
"""Bootstrap resamples of the test users."""


def ranked_top(
    score: ScoreFunction, split: Split, k: int = 10, *, batch_size: int = 1024
) -> IntVector:
    """Each test user's top-``k`` items (the split's exclusions masked, -1 pads); shape
    (n_test_users, k)."""
    users = split.test_users
    out = np.full((len(users), k), -1, dtype=np.int64)
    for start in range(0, len(users), batch_size):
        rows = np.arange(start, min(start + batch_size, len(users)), dtype=np.int64)
        scores = _masked_scores(score(rows), split, users[rows])
        ranked = m.topk(scores, k)
        hidden = np.isneginf(np.take_along_axis(scores, ranked, axis=1))
        out[rows] = np.where(hidden, -1, ranked)
    return out


def ratio_interval(
    ours: npt.ArrayLike,
    base: npt.ArrayLike,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = 0.95,
    random_state: int = 0,
) -> dict[str, Any]:
    """``mean(ours) / mean(base)`` with a paired percentile bootstrap interval over users.

    The same resampled users enter both means, so what the two scorers share (which users
    are easy) cancels out of the interval.

    Returns
    -------
    dict
        ``value``, ``low``, ``high`` (NaN where the base mean is 0), ``level``,
        ``n_users``, ``n_resamples``.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    n = len(a)
    out: dict[str, Any] = {"level": level, "n_users": n, "n_resamples": n_resamples}
    if n == 0 or b.sum() == 0:
        return {**out, "value": float("nan"), "low": float("nan"), "high": float("nan")}
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, n, size=(n_resamples, n))
    sa, sb = a[picks].mean(axis=1), b[picks].mean(axis=1)
    ratios = np.divide(sa, sb, out=np.full_like(sa, np.nan), where=sb > 0)
    tail = (1.0 - level) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return {**out, "value": float(a.mean() / b.mean()), "low": float(low), "high": float(high)}


def ratio_verdict(interval: Mapping[str, Any]) -> str:
    """What a ratio's 95 % interval (:func:`ratio_interval`) says about the gap:
    ``"real"`` when it excludes 1, ``"noise"`` when it holds 1, ``"identical"`` when both
    ends are exactly 1 (the same ranking), ``"undefined"`` when an end is not finite."""
    low, high = float(interval["low"]), float(interval["high"])
    if not (np.isfinite(low) and np.isfinite(high)):
        return "undefined"
    if low == high == 1.0:
        return "identical"
    return "real" if low > 1.0 or high < 1.0 else "noise"


def top_overlap(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Mean share of each row's top-n that two rankings share (padding -1 ignored).

    Parameters
    ----------
    a, b : array-like of shape (n_users, n)
    """
    x, y = np.asarray(a), np.asarray(b)
    shares = []
    for row_a, row_b in zip(x, y, strict=True):
        items_a = {int(i) for i in row_a if i >= 0}
        items_b = {int(i) for i in row_b if i >= 0}
        size = max(len(items_a), len(items_b))
        if size:
            shares.append(len(items_a & items_b) / size)
    return float(np.mean(shares)) if shares else float("nan")
