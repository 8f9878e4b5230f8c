"""Fine groups: the group part of every group-based answer.

The segments people name are few and stable, and at that size they barely predict what
their members do. Behind them sits an ensemble of fine partitions of the same user
vectors (:func:`usergroups.clustering.fine.fit_fine_partitions`: ``P`` k-means fits of
``K`` groups, each on its own 80 % subsample). A user's group scores are the mean, over
the partitions, of the smoothed popularity of the fine group the user is in
(:class:`~usergroups.recommend.group_popularity.GroupPopularity`'s formula); a new user
known by one text gets the same mean with a soft membership in each partition.

Every user is placed into each partition by one rule,
:func:`usergroups.linalg.nearest_rows` (the most cosine-similar centroid), whether the
user was in the partition's subsample or not, at fit time, in the service and in Spark.

Examples
--------
>>> import numpy as np, scipy.sparse as sp
>>> vectors = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
>>> centroids = np.array([[[1, 0], [0, 1]]], dtype=np.float32)   # one partition, K = 2
>>> x = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], np.float32))
>>> fine = FineGroups(smoothing=0).fit(vectors, x, centroids)
>>> fine.labels_[:, 0].tolist()
[0, 0, 1, 1]
>>> fine.user_scores(np.array([0])).round(2).tolist()
[[1.0, 0.5, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix, IntVector
from usergroups.errors import DataError, NotFittedError
from usergroups.linalg import nearest_rows, pool_rows, unit_rows
from usergroups.recommend.group_popularity import GroupPopularity

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = ["FineGroups"]

MEMBERSHIP_TEMPERATURE = 0.05
"""Softmax temperature of a new user's membership in each partition's groups (the
segments' confidence uses the same)."""


class FineGroups:
    """An ensemble of fine partitions and each fine group's smoothed popularity.

    Parameters
    ----------
    smoothing : float
        Pseudo-count toward global popularity (``recommend.smoothing``).
    temperature : float
        Softmax temperature of soft membership (new users).

    Attributes
    ----------
    centroids_ : ndarray of shape (n_partitions, n_fine, n_features)
    labels_ : ndarray of shape (n_users, n_partitions), int64
        Each known user's fine group in each partition (-1: placed nowhere).
    popularity_ : GroupPopularity
        Over the flattened groups ``p * n_fine + k``.
    representative_ : int
        The partition whose groups are shown as sub-interests (set by the fit:
        :func:`usergroups.clustering.fine.representative_partition`; 0 until then).
    """

    representative_: int = 0

    def __init__(self, smoothing: float = 10.0, temperature: float = MEMBERSHIP_TEMPERATURE):
        self.smoothing = smoothing
        self.temperature = temperature

    def __repr__(self) -> str:
        shape = getattr(self, "centroids_", np.zeros((0, 0, 0))).shape
        return f"FineGroups(n_partitions={shape[0]}, n_fine={shape[1]})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self, vectors: npt.ArrayLike, interactions: sp.spmatrix, centroids: npt.ArrayLike
    ) -> FineGroups:
        """Place every user into each partition and count what each fine group consumes.

        Parameters
        ----------
        vectors : array-like of shape (n_users, n_features)
        interactions : sparse matrix of shape (n_users, n_items)
        centroids : array-like of shape (n_partitions, n_fine, n_features)
        """
        c = np.asarray(centroids, dtype=np.float32)
        if c.ndim != 3 or c.shape[0] == 0 or c.shape[1] == 0:
            raise DataError(
                f"fine centroids must have shape (n_partitions, n_fine, n_features) with "
                f"at least one of each, got {c.shape}"
            )
        self.centroids_ = c
        labels = self.place(vectors)
        return self._count(labels, interactions)

    def _count(self, labels: IntVector, interactions: sp.spmatrix) -> FineGroups:
        x = sp.csr_matrix(interactions, dtype=np.float32)
        if labels.shape != (x.shape[0], self.n_partitions):
            raise DataError(
                f"fine labels have shape {labels.shape}, expected "
                f"({x.shape[0]}, {self.n_partitions}): one per user and partition"
            )
        self.labels_ = np.asarray(labels, dtype=np.int64)
        flat = self._flat(self.labels_)
        users = np.repeat(np.arange(x.shape[0]), self.n_partitions)
        groups = flat.ravel()
        ok = groups >= 0
        member = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (groups[ok], users[ok])),
            shape=(self.n_partitions * self.n_fine, x.shape[0]),
        )
        binary = x.copy()
        binary.data[:] = 1.0
        counts = np.asarray((member @ binary).todense(), dtype=np.float32)
        sizes = np.bincount(groups[ok], minlength=member.shape[0]).astype(np.float32)
        popularity = np.asarray(binary.sum(axis=0)).ravel().astype(np.float32)
        popularity /= max(x.shape[0], 1)
        self.popularity_ = GroupPopularity.from_arrays(counts, sizes, popularity, self.smoothing)
        return self

    # ------------------------------------------------------------------- shape
    def _check_fitted(self) -> None:
        if not hasattr(self, "popularity_"):
            raise NotFittedError("FineGroups is not fitted; call fit(vectors, interactions, ...)")

    @property
    def n_partitions(self) -> int:
        return int(self.centroids_.shape[0])

    @property
    def n_fine(self) -> int:
        return int(self.centroids_.shape[1])

    def _flat(self, labels: IntVector) -> IntVector:
        """Partition-local labels ``(n, P)`` to flattened group ids (-1 stays -1)."""
        offsets = np.arange(self.n_partitions, dtype=np.int64) * self.n_fine
        return np.where(labels >= 0, labels + offsets[None, :], -1)

    # ----------------------------------------------------------------- placing
    def place(self, vectors: npt.ArrayLike) -> IntVector:
        """Each row's fine group in each partition, shape (n_rows, n_partitions); -1 for
        all-zero rows (:func:`usergroups.linalg.nearest_rows`)."""
        c = self.centroids_
        return np.stack([nearest_rows(vectors, c[p])[0] for p in range(len(c))], axis=1)

    def membership(
        self, vectors: npt.ArrayLike, centroids: npt.ArrayLike | None = None
    ) -> FloatMatrix:
        """Soft membership of each row in every fine group, shape (n_rows, P * K).

        Each partition's share is a softmax over its groups' cosine similarities at
        ``temperature``, divided by P, so a row sums to 1; all-zero rows are all zero.
        ``centroids`` (shape (P, K, n_features)) places the rows by other centres of the
        same groups, e.g. their members' mean text (:meth:`text_centroids`).
        """
        units = self._unit_centroids(centroids)
        a = unit_rows(vectors)
        if a.shape[1] != units.shape[1]:
            raise DataError(
                f"vectors have {a.shape[1]} features and centroids {units.shape[1]}; place "
                "vectors built the way the model built its own"
            )
        # every partition's cosines in one product (the same as nearest_rows per
        # partition); the softmax then runs over each partition's K groups
        sims = np.asarray(a @ units.T, dtype=np.float32).reshape(len(a), self.n_partitions, -1)
        z = (sims - sims.max(axis=2, keepdims=True)) / np.float32(self.temperature)
        e = np.exp(z)
        share = e / e.sum(axis=2, keepdims=True) / self.n_partitions
        share[~np.any(a != 0, axis=1)] = 0.0  # all-zero rows are nowhere
        return share.reshape(len(a), -1)

    def _unit_centroids(self, centroids: npt.ArrayLike | None) -> FloatMatrix:
        """``centroids`` (default: :attr:`centroids_`) as unit rows, shape (P * K, d).

        Normalised once per centroids array and kept (read-only): a new user's membership
        is asked for on every ``/assign`` and the centres never change. The cache holds
        the arrays it was computed from, so an id is never reused for another array.
        """
        c = self.centroids_ if centroids is None else centroids
        cache: dict[int, tuple[Any, FloatMatrix]] = self.__dict__.setdefault("_units", {})
        hit = cache.get(id(c))
        if hit is not None and hit[0] is c:
            return hit[1]
        arr = np.asarray(c, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[:2] != (self.n_partitions, self.n_fine):
            raise DataError(
                f"centroids have shape {arr.shape}, expected ({self.n_partitions}, "
                f"{self.n_fine}, n_features): one centre per fine group of each partition"
            )
        units = unit_rows(arr.reshape(-1, arr.shape[2]))
        units.setflags(write=False)
        if len(cache) >= 4:  # a refit brings new centres; the old ones are not asked again
            cache.clear()
        cache[id(c)] = (c, units)
        return units

    def text_centroids(self, text_block: npt.ArrayLike) -> FloatMatrix:
        """Each fine group's place in the text space: the unit mean of its members' text
        vectors, shape (P, K, d). A new user is known by text alone; a missing behaviour
        block means "unknown", not "zero", so they are placed by these centres rather
        than by the fused ones (whose text part shrinks with the text weight)."""
        self._check_fitted()
        text = unit_rows(text_block)
        if len(text) != len(self.labels_):
            raise DataError(f"text_block has {len(text)} rows for {len(self.labels_)} fitted users")
        has_text = np.any(text != 0, axis=1)
        out = np.zeros((self.n_partitions, self.n_fine, text.shape[1]), dtype=np.float32)
        for p in range(self.n_partitions):
            member = (self.labels_[:, p] >= 0) & has_text
            out[p] = unit_rows(pool_rows(self.labels_[member, p], text[member], self.n_fine))
        return out

    # ------------------------------------------------------------------ scores
    def scores_of(self, labels: IntVector) -> FloatMatrix:
        """Mean over partitions of each row's fine group's scores; shape (n, n_items).

        A row placed nowhere in a partition gets global popularity for that partition.
        """
        self._check_fitted()
        flat = self._flat(np.atleast_2d(np.asarray(labels, dtype=np.int64)))
        out = self.popularity_.group_scores(flat[:, 0])
        for p in range(1, self.n_partitions):
            out += self.popularity_.group_scores(flat[:, p])
        out /= np.float32(self.n_partitions)
        return out

    def user_scores(self, rows: IntVector) -> FloatMatrix:
        """Group scores of known users (rows of the fitted data); shape (n, n_items)."""
        self._check_fitted()
        return self.scores_of(self.labels_[np.asarray(rows, dtype=np.int64)])

    def vector_scores(self, vectors: npt.ArrayLike) -> FloatMatrix:
        """Group scores of users given by their fused vectors (e.g. changed by events)."""
        return self.scores_of(self.place(vectors))

    def soft_scores(
        self, vectors: npt.ArrayLike, centroids: npt.ArrayLike | None = None
    ) -> FloatMatrix:
        """Group scores of new users by soft membership (:meth:`membership`, ``centroids``
        as there); all-zero rows get global popularity. Shape (n, n_items)."""
        self._check_fitted()
        member = self.membership(vectors, centroids)
        out = np.asarray(member @ self.popularity_.scores_, dtype=np.float32)
        nowhere = member.sum(axis=1) == 0
        out[nowhere] = self.popularity_.popularity_
        return out

    # ------------------------------------------------------------- persistence
    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """``fine_centroids`` and ``fine_labels``; the counts are rebuilt from the labels
        and the interactions on load (:meth:`from_arrays`)."""
        self._check_fitted()
        return {
            "fine_centroids": self.centroids_,
            "fine_labels": self.labels_.astype(np.int32),
            "fine_representative": np.array([self.representative_], dtype=np.int64),
        }

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, npt.NDArray[Any]],
        interactions: sp.spmatrix | None,
        smoothing: float,
        *,
        popularity: GroupPopularity | None = None,
    ) -> FineGroups:
        """Rebuild from :meth:`to_arrays` and the model's interactions, or from the fine
        groups' ``popularity`` counted already (the answer path counts it without scipy,
        :mod:`usergroups.answers`)."""
        model = cls(smoothing=smoothing)
        model.centroids_ = np.asarray(arrays["fine_centroids"], dtype=np.float32)
        model.representative_ = int(np.asarray(arrays["fine_representative"]).ravel()[0])
        if not 0 <= model.representative_ < model.n_partitions:
            raise DataError(
                f"fine_representative={model.representative_} is not a partition of "
                f"{model.n_partitions}"
            )
        labels = np.asarray(arrays["fine_labels"], dtype=np.int64)
        if popularity is not None:
            model.labels_, model.popularity_ = labels, popularity
            return model
        if interactions is None:
            raise DataError("FineGroups.from_arrays needs the interactions or the popularity")
        return model._count(labels, interactions)

    def sub_interests(self) -> IntVector:
        """Each known user's fine group in the representative partition; shape (n_users,)."""
        self._check_fitted()
        return np.asarray(self.labels_[:, self.representative_], dtype=np.int64)
