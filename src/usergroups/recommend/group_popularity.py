"""Group-popularity recommendations: what a user's group consumes, smoothed toward the crowd.

The score of item ``i`` for group ``g`` is ``(c[g, i] + s * p[i]) / (n[g] + s)`` where
``c[g, i]`` counts the group's members who interacted with ``i``, ``n[g]`` is the group's
size, ``p[i]`` the share of all users who interacted with ``i`` and ``s`` the smoothing
pseudo-count: a small group's scores lean on global popularity, a large group's on itself.
Noise users (group -1) and users outside every group get global popularity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix, IntVector
from usergroups.errors import ConfigError, DataError, NotFittedError

# the one top-n of the project lives in usergroups.ranking; re-exported for its callers
from usergroups.ranking import top_n

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = ["GroupPopularity", "top_n"]


class GroupPopularity:
    """Recommend each group's smoothed popular items, excluding what a user has seen.

    Parameters
    ----------
    smoothing : float
        Pseudo-count ``s`` toward global popularity.

    Attributes
    ----------
    counts_ : ndarray of shape (n_groups, n_items), float32
        Members of each group who interacted with each item.
    sizes_ : ndarray of shape (n_groups,)
    popularity_ : ndarray of shape (n_items,)
        Share of users who interacted with each item.
    scores_ : ndarray of shape (n_groups, n_items)

    Examples
    --------
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32))
    >>> rec = GroupPopularity(smoothing=0).fit(x, np.array([0, 0, 1]))
    >>> rec.recommend_groups(np.array([0]), n=2)[0].tolist()
    [[0, 1]]
    """

    def __init__(self, smoothing: float = 10.0) -> None:
        self.smoothing = smoothing

    # scikit-learn's parameter protocol (so ``sklearn.base.clone`` works), written out: a
    # loaded model recommends without importing scikit-learn (about 1 s of a CLI call)
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"smoothing": self.smoothing}

    def set_params(self, **params: Any) -> GroupPopularity:
        for name, value in params.items():
            if name != "smoothing":
                raise ValueError(f"GroupPopularity has no parameter {name!r}; it has 'smoothing'")
            self.smoothing = value
        return self

    def __repr__(self) -> str:
        return f"GroupPopularity(smoothing={self.smoothing!r})"

    def fit(self, interactions: sp.spmatrix, labels: np.ndarray) -> GroupPopularity:
        """Count group consumption.

        Parameters
        ----------
        interactions : sparse matrix of shape (n_users, n_items)
            Non-zero entries are interactions (values are ignored).
        labels : ndarray of shape (n_users,)
            Group of each user, -1 for noise.
        """
        if self.smoothing < 0:
            raise ConfigError(f"smoothing must be >= 0, got {self.smoothing}")
        x = sp.csr_matrix(interactions, dtype=np.float32)
        x.data[:] = 1.0
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (x.shape[0],):
            raise DataError(f"labels must have shape ({x.shape[0]},); got {labels.shape}")
        n_groups = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
        members = labels >= 0
        assign = sp.csr_matrix(
            (np.ones(members.sum(), np.float32), (labels[members], np.flatnonzero(members))),
            shape=(n_groups, x.shape[0]),
        )
        self.counts_ = np.asarray((assign @ x).todense(), dtype=np.float32)
        self.sizes_ = np.bincount(labels[members], minlength=n_groups).astype(np.float32)
        self.popularity_ = np.asarray(x.sum(axis=0)).ravel().astype(np.float32) / max(x.shape[0], 1)
        self._compute_scores()
        return self

    def _compute_scores(self) -> None:
        s = np.float32(self.smoothing)
        denom = self.sizes_[:, None] + s
        num = self.counts_ + s * self.popularity_[None, :]
        self.scores_ = np.divide(
            num, denom, out=np.tile(self.popularity_, (len(self.sizes_), 1)), where=denom > 0
        ).astype(np.float32)

    @classmethod
    def from_arrays(
        cls, counts: np.ndarray, sizes: np.ndarray, popularity: np.ndarray, smoothing: float
    ) -> GroupPopularity:
        """Rebuild a fitted recommender from saved arrays."""
        rec = cls(smoothing=smoothing)
        rec.counts_ = np.asarray(counts, np.float32)
        rec.sizes_ = np.asarray(sizes, np.float32)
        rec.popularity_ = np.asarray(popularity, np.float32)
        rec._compute_scores()
        return rec

    def _check_fitted(self) -> None:
        if not hasattr(self, "scores_"):
            raise NotFittedError("GroupPopularity is not fitted; call fit(interactions, labels)")

    def group_scores(self, groups: np.ndarray) -> FloatMatrix:
        """Scores of shape (len(groups), n_items); group -1 gets global popularity."""
        self._check_fitted()
        groups = np.asarray(groups, dtype=np.int64)
        out = np.empty((len(groups), len(self.popularity_)), dtype=np.float32)
        inside = (groups >= 0) & (groups < len(self.sizes_))
        out[inside] = self.scores_[groups[inside]]
        out[~inside] = self.popularity_
        return out

    def recommend_groups(
        self, groups: np.ndarray, n: int = 10, *, exclude: sp.spmatrix | None = None
    ) -> tuple[IntVector, np.ndarray]:
        """Top-``n`` item indices and scores per row.

        Parameters
        ----------
        groups : ndarray of shape (n_rows,)
            Group of each row (a user or a group).
        exclude : sparse matrix of shape (n_rows, n_items), optional
            Items to leave out per row (a user's seen items).
        """
        scores = self.group_scores(groups)
        if exclude is not None:
            ex = sp.csr_matrix(exclude)
            rows = np.repeat(np.arange(ex.shape[0]), np.diff(ex.indptr))
            scores[rows, ex.indices] = -np.inf
        return top_n(scores, n)
