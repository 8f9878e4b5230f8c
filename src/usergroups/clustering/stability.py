"""How reliably a clustering comes back: resample users, re-cluster, compare.

A segment is only worth acting on if re-running the clustering — with another seed, on a
slightly different set of users — finds it again. :func:`resample_runs` re-clusters
``n_resamples`` random subsets of the users (each with a fresh seed), and two summaries
compare every run with the reference clustering of all users, on the users the run saw:

- :func:`partition_agreement`: the mean adjusted Rand index (Hubert & Arabie 1985) of the
  whole partition — what :func:`usergroups.selection.select` uses to keep the number of
  groups within what the data supports (stability-based model selection, von Luxburg
  2010);
- :func:`group_jaccard`: for every reference group, the mean over runs of its best
  Jaccard index with any group of the run (Hennig's ``clusterboot``, 2007). Hennig reads
  below 0.5 as a dissolved cluster, 0.6–0.75 as a pattern, above 0.85 as highly stable.

Subsampling without replacement (not a bootstrap with duplicates) keeps the k-means
objective unchanged; each run uses a different seed, so seed and sample variation are
measured together.

Examples
--------
>>> import numpy as np
>>> from sklearn.cluster import KMeans
>>> rng = np.random.default_rng(0)
>>> X = np.repeat(np.eye(3), 30, axis=0) + 0.05 * rng.standard_normal((90, 3))
>>> fit = lambda Z, seed: KMeans(3, n_init=3, random_state=seed).fit(Z).labels_
>>> reference = fit(X, 0)
>>> runs = resample_runs(fit, X, n_resamples=3, random_state=0)
>>> round(partition_agreement(reference, runs), 2), group_jaccard(reference, runs).round(2)
(1.0, array([1., 1., 1.]))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._typing import FloatMatrix, IntVector
from usergroups.errors import DataError

__all__ = [
    "MAX_STABILITY_USERS",
    "ResampleRun",
    "Stability",
    "group_jaccard",
    "measure_stability",
    "partition_agreement",
    "resample_runs",
]

MAX_STABILITY_USERS = 20_000
"""Above this many users, the runs re-cluster a random subset of this size (drawn per run),
so the check costs the same on a million users as on twenty thousand."""


@dataclass(frozen=True)
class ResampleRun:
    """One re-clustering: the rows (into the reference) it saw and their labels."""

    rows: IntVector
    labels: IntVector


def resample_runs(
    fit_labels: Callable[[FloatMatrix, int], npt.ArrayLike],
    X: npt.NDArray[Any],
    *,
    n_resamples: int = 5,
    fraction: float = 0.8,
    random_state: int = 0,
    max_users: int = MAX_STABILITY_USERS,
) -> list[ResampleRun]:
    """Re-cluster ``n_resamples`` random subsets of the rows of ``X``.

    Parameters
    ----------
    fit_labels : callable
        ``fit_labels(X_subset, seed) -> labels`` of the subset (negative = noise).
    X : ndarray of shape (n_users, dim)
    n_resamples : int
    fraction : float
        Share of the users in each subset, in (0, 1].
    random_state : int
        Seeds the subsets and the runs' seeds (each run gets its own).
    max_users : int
        At most this many users per subset.

    Returns
    -------
    list of ResampleRun
    """
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"fraction must be in (0, 1]; got {fraction}")
    n = len(X)
    size = min(max(round(fraction * n), 2), max_users, n)
    rng = np.random.default_rng(random_state)
    runs = []
    for _ in range(n_resamples):
        rows = np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)
        seed = int(rng.integers(0, 2**31 - 1))
        labels = np.asarray(fit_labels(X[rows], seed), dtype=np.int64)
        if len(labels) != len(rows):
            raise DataError(
                f"fit_labels returned {len(labels)} labels for {len(rows)} rows; it must "
                "label every row of the subset it is given"
            )
        runs.append(ResampleRun(rows=rows, labels=labels))
    return runs


def partition_agreement(reference: npt.ArrayLike, runs: Sequence[ResampleRun]) -> float:
    """Mean adjusted Rand index of each run with ``reference`` on the rows it saw.

    Noise users (negative labels) count as one more group, as in the ARI of the
    benchmark. NaN without runs.
    """
    from sklearn.metrics import adjusted_rand_score

    ref = np.asarray(reference, dtype=np.int64)
    if not runs:
        return float("nan")
    return float(np.mean([adjusted_rand_score(ref[r.rows], r.labels) for r in runs]))


def group_jaccard(reference: npt.ArrayLike, runs: Sequence[ResampleRun]) -> npt.NDArray[np.float64]:
    """Per reference group, the mean over runs of its best Jaccard index with a run's group.

    Only the users a run saw count, on both sides. A group none of whose members a run saw
    is left out of that run's mean; a group no run saw gets NaN. Noise (negative labels)
    is neither a reference group nor a match.

    Returns
    -------
    ndarray of shape (n_groups,), ``n_groups = max(reference) + 1``
    """
    ref = np.asarray(reference, dtype=np.int64)
    n_groups = int(ref.max()) + 1 if len(ref) and ref.max() >= 0 else 0
    total = np.zeros(n_groups)
    seen = np.zeros(n_groups)
    for run in runs:
        mine = ref[run.rows]
        theirs = run.labels
        ok_mine, ok_theirs = mine >= 0, theirs >= 0
        n_theirs = int(theirs.max()) + 1 if ok_theirs.any() else 0
        if n_theirs == 0:
            continue
        both = ok_mine & ok_theirs
        # contingency of reference groups × run groups, then Jaccard = |A∩B| / |A∪B|
        table = np.zeros((n_groups, n_theirs))
        np.add.at(table, (mine[both], theirs[both]), 1.0)
        size_mine = np.bincount(mine[ok_mine], minlength=n_groups).astype(float)
        size_theirs = np.bincount(theirs[ok_theirs], minlength=n_theirs).astype(float)
        union = size_mine[:, None] + size_theirs[None, :] - table
        jac = np.divide(table, union, out=np.zeros_like(table), where=union > 0)
        present = size_mine > 0
        total[present] += jac[present].max(axis=1)
        seen[present] += 1
    return np.divide(total, seen, out=np.full(n_groups, np.nan), where=seen > 0)


@dataclass(frozen=True)
class Stability:
    """Both summaries of one set of runs: the partition's ARI and each group's Jaccard."""

    ari: float
    groups: npt.NDArray[np.float64]


def measure_stability(
    reference: npt.ArrayLike,
    fit_labels: Callable[[FloatMatrix, int], npt.ArrayLike],
    X: npt.NDArray[Any],
    *,
    n_resamples: int = 5,
    random_state: int = 0,
) -> Stability:
    """:func:`resample_runs` of ``fit_labels`` on ``X``, compared with ``reference``.

    ``reference`` labels the rows of ``X``; see :func:`partition_agreement` and
    :func:`group_jaccard` for the two figures.
    """
    runs = resample_runs(fit_labels, X, n_resamples=n_resamples, random_state=random_state)
    return Stability(
        ari=partition_agreement(reference, runs), groups=group_jaccard(reference, runs)
    )
