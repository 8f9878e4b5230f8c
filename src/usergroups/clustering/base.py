"""The contract every group clusterer follows, and the helpers they share.

A group clusterer is a scikit-learn style estimator: the constructor only stores its
keyword arguments, :meth:`GroupClusterer.fit` validates them and the data, learns,
and returns ``self``. Every implementation learns the same attributes:

``labels_`` : ndarray of shape (n_users,), int64
    Group of each training user, ``0 .. n_groups_ - 1``; ``-1`` marks noise
    (only density methods produce noise).
``centroids_`` : ndarray of shape (n_groups_, n_features), float32
    Mean of each group's (L2-normalised) member vectors.
``n_groups_`` : int
    Number of groups, noise not counted.
``k_scores_`` : dict[int, float]
    Silhouette (cosine) for every number of groups tried when ``n_groups="auto"``;
    empty otherwise.
``silhouette_`` : float
    Silhouette (cosine) of the final labelling on a seeded sample of users,
    noise left out; ``nan`` when it is undefined (fewer than two groups).
``n_features_in_`` : int
    Number of features seen in ``fit``.
``n_iter_`` : int
    Iterations of the final fit (the k-means family only, as in scikit-learn).

Geometry: user vectors are compared by cosine. ``fit`` L2-normalises every row
(an all-zero row stays zero) so that Euclidean methods (k-means, Ward) work on the
unit sphere, where squared Euclidean distance is ``2 - 2 * cosine``.
"""

from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted as sklearn_check_is_fitted

from usergroups._typing import FloatMatrix, IntVector
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.linalg import unit_rows

__all__ = [
    "ClustererNotFittedError",
    "GroupClusterer",
    "check_vectors",
    "cosine_silhouette",
    "group_centroids",
    "group_sums",
    "nearest_centroid",
    "normalize_rows",
    "select_n_groups",
]

logger = logging.getLogger(__name__)

normalize_rows = unit_rows
"""Unit-length float32 rows, zero rows kept (:func:`usergroups.linalg.unit_rows`)."""

NOISE = -1
"""Label of users that belong to no group."""


class ClustererNotFittedError(NotFittedError, SklearnNotFittedError):
    """``predict`` before ``fit``: both our :class:`~usergroups.errors.NotFittedError` and
    scikit-learn's, so code written for either catches it (scikit-learn's estimator checks
    require the latter)."""


class _NotNumbersError(DataError, TypeError):
    """Values that are not numbers (e.g. a dict in an object array): a ``TypeError`` too, as
    numpy and scikit-learn raise for them."""


# --------------------------------------------------------------------------- helpers


def check_vectors(X: Any, *, name: str = "X") -> FloatMatrix:
    """Validate user vectors and return them as a C-contiguous float32 array.

    Parameters
    ----------
    X : array-like of shape (n_users, n_features)
        User vectors; any real dtype.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    ndarray of shape (n_users, n_features), float32
        ``X`` itself when it already is C-contiguous float32, otherwise a copy.

    Raises
    ------
    DataError
        When ``X`` is not a non-empty, dense 2-D array of finite real numbers.

    Examples
    --------
    >>> check_vectors([[1, 0], [0, 1]]).dtype
    dtype('float32')
    """
    if sp.issparse(X):
        raise DataError(
            f"{name} is a sparse matrix; sparse input is not supported: pass {name}.toarray()"
        )
    try:
        arr = np.asarray(X)
        if arr.dtype == object:
            arr = arr.astype(np.float64)
    except TypeError as exc:
        raise _NotNumbersError(f"{name} cannot be read as an array of numbers: {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{name} cannot be read as an array of numbers: {exc}") from exc
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be a 2-D array of shape (n_users, n_features); got {arr.ndim}-D "
            f"shape {arr.shape}. Reshape your data with x.reshape(1, -1) for a single user"
        )
    if arr.shape[1] == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required; "
            "pass vectors with at least one column"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} has no users (shape={arr.shape}); it needs at least one")
    if np.iscomplexobj(arr):
        raise DataError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{name} has {bad.size} rows with NaN or infinite values (e.g. row {int(bad[0])}); "
            "drop or impute those users first"
        )
    return out


def compact_labels(labels: npt.ArrayLike) -> tuple[IntVector, int]:
    """Renumber group labels to ``0 .. n_groups - 1`` keeping their order; ``-1`` stays.

    Parameters
    ----------
    labels : array-like of shape (n_users,)

    Returns
    -------
    labels : ndarray of shape (n_users,), int64
    n_groups : int

    Examples
    --------
    >>> compact_labels([4, -1, 7, 4])
    (array([ 0, -1,  1,  0]), 2)
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.full(labels.shape, NOISE, dtype=np.int64)
    member = labels != NOISE
    groups, inverse = np.unique(labels[member], return_inverse=True)
    out[member] = inverse
    return out, int(groups.size)


def group_centroids(X: FloatMatrix, labels: IntVector, n_groups: int) -> FloatMatrix:
    """Mean vector of each group's members; noise (``-1``) is left out.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : ndarray of shape (n_users,), int
        Values in ``-1 .. n_groups - 1``.
    n_groups : int

    Returns
    -------
    ndarray of shape (n_groups, n_features), float32
        A group without members gets a zero row.

    Examples
    --------
    >>> X = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    >>> group_centroids(X, np.array([0, 0, 1]), 2).tolist()
    [[0.5, 0.5], [1.0, 1.0]]
    """
    sums, counts = group_sums(X, labels, n_groups)
    counts = counts.reshape(-1, 1)
    return np.divide(sums, np.where(counts > 0, counts, 1.0)).astype(np.float32)


_SUM_BLOCK = 65536
"""Users summed per block by :func:`group_sums`: bounds the float64 copy (1M x 448 would
otherwise need 3.6 GB at once)."""


def group_sums(
    X: FloatMatrix, labels: IntVector, n_groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Float64 sum of each group's member rows and the group sizes; noise left out.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : ndarray of shape (n_users,), int
        Values in ``-1 .. n_groups - 1``.
    n_groups : int

    Returns
    -------
    sums : ndarray of shape (n_groups, n_features), float64
    counts : ndarray of shape (n_groups,), int64
    """
    labels = np.asarray(labels, dtype=np.int64)
    sums = np.zeros((n_groups, X.shape[1]), dtype=np.float64)
    for begin in range(0, X.shape[0], _SUM_BLOCK):
        block = labels[begin : begin + _SUM_BLOCK]
        member = np.flatnonzero(block != NOISE)
        if not member.size:
            continue
        # a sparse indicator matrix sums the rows per group in one product
        indicator = sp.csr_matrix(
            (np.ones(member.size, dtype=np.float64), (block[member], member)),
            shape=(n_groups, block.size),
        )
        sums += indicator @ np.asarray(X[begin : begin + block.size], dtype=np.float64)
    member_labels = labels[labels != NOISE]
    counts = np.bincount(member_labels, minlength=n_groups)[:n_groups].astype(np.int64)
    return sums, counts


def nearest_centroid(X: FloatMatrix, centroids: FloatMatrix) -> IntVector:
    """Index of the centroid with the highest cosine similarity to each row.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    centroids : ndarray of shape (n_groups, n_features)

    Returns
    -------
    ndarray of shape (n_users,), int64
        ``-1`` for every row when there are no centroids. Ties go to the lower index.

    Examples
    --------
    >>> C = np.array([[1, 0], [0, 2]], dtype=np.float32)
    >>> nearest_centroid(np.array([[0.1, 0.9], [5, 1]], dtype=np.float32), C).tolist()
    [1, 0]
    """
    if centroids.shape[0] == 0:
        return np.full(X.shape[0], NOISE, dtype=np.int64)
    sims = normalize_rows(X) @ normalize_rows(centroids).T
    return np.asarray(np.argmax(sims, axis=1), dtype=np.int64)


def _sample_indices(n: int, sample_size: int, random_state: int | None) -> IntVector:
    if n <= sample_size:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=sample_size, replace=False)).astype(np.int64)


class _SilhouetteSample:
    """Cosine distances among a fixed, seeded sample of users, computed once.

    Scoring many candidate labellings (one per number of groups) against the same
    sample keeps the scores comparable and costs one matrix product in total.
    """

    def __init__(self, X: FloatMatrix, sample_size: int, random_state: int | None) -> None:
        self.index = _sample_indices(X.shape[0], sample_size, random_state)
        Xs = normalize_rows(X[self.index])
        dist = 1.0 - Xs @ Xs.T
        np.clip(dist, 0.0, 2.0, out=dist)
        np.fill_diagonal(dist, 0.0)
        self.distances = dist

    def score(self, labels: IntVector) -> float:
        """Silhouette of ``labels`` (of all users) on the sample, noise left out."""
        sample_labels = labels[self.index]
        keep = sample_labels != NOISE
        n_kept = int(keep.sum())
        n_labels = np.unique(sample_labels[keep]).size
        if not 2 <= n_labels <= n_kept - 1:
            return float("nan")
        dist = self.distances if keep.all() else self.distances[np.ix_(keep, keep)]
        return float(silhouette_score(dist, sample_labels[keep], metric="precomputed"))


def cosine_silhouette(
    X: FloatMatrix,
    labels: npt.ArrayLike,
    *,
    sample_size: int = 5000,
    random_state: int | None = None,
) -> float:
    """Silhouette coefficient with cosine distance on a seeded sample of users.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    labels : array-like of shape (n_users,)
        Noise (``-1``) is left out.
    sample_size : int, default=5000
        At most this many users are scored. Time and memory grow with its square:
        5,000 users need a 100 MB float32 distance matrix.
    random_state : int or None
        Seed of the sample.

    Returns
    -------
    float
        In ``[-1, 1]``; ``nan`` when the sample holds fewer than two groups or every
        sampled user is its own group.

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
    >>> round(cosine_silhouette(X, [0, 0, 1, 1]), 2)
    0.99
    """
    return _SilhouetteSample(X, sample_size, random_state).score(np.asarray(labels, dtype=np.int64))


def select_n_groups(
    X: FloatMatrix,
    ks: Sequence[int],
    labels_for_k: Callable[[int], IntVector],
    *,
    sample_size: int,
    random_state: int | None,
) -> tuple[int, IntVector, dict[int, float]]:
    """Pick the number of groups with the highest cosine silhouette.

    Parameters
    ----------
    X : ndarray of shape (n_users, n_features)
    ks : sequence of int
        Candidate numbers of groups, ascending.
    labels_for_k : callable
        ``labels_for_k(k)`` returns the labels of shape (n_users,) for ``k`` groups.
    sample_size : int
        Users in the silhouette sample (the same sample scores every ``k``).
    random_state : int or None
        Seed of the sample.

    Returns
    -------
    k : int
        The best candidate; the smallest among equal scores, and ``ks[0]`` when
        no score is defined.
    labels : ndarray of shape (n_users,), int64
        Labels of the best candidate.
    scores : dict[int, float]
        Silhouette of every candidate (``nan`` where undefined).

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=np.float32)
    >>> k, labels, scores = select_n_groups(
    ...     X, [2, 3], lambda k: np.array([0, 0, 1, 1]) if k == 2 else np.array([0, 1, 2, 2]),
    ...     sample_size=100, random_state=0)
    >>> k
    2
    """
    if not ks:
        raise ConfigError("select_n_groups needs at least one candidate number of groups")
    sample = _SilhouetteSample(X, sample_size, random_state)
    scores: dict[int, float] = {}
    best_k, best_labels, best_score = ks[0], None, -np.inf
    for k in ks:
        labels = np.asarray(labels_for_k(k), dtype=np.int64)
        score = sample.score(labels)
        scores[int(k)] = score
        logger.debug("n_groups=%d: silhouette %.4f", k, score)
        if best_labels is None or (not np.isnan(score) and score > best_score):
            best_k, best_labels = int(k), labels
            best_score = score if not np.isnan(score) else -np.inf
    assert best_labels is not None
    logger.info("chose n_groups=%d (silhouette %.4f) among %s", best_k, scores[best_k], list(ks))
    return best_k, best_labels, scores


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`ConfigError` listing ``choices`` when ``value`` is not one of them.

    Examples
    --------
    >>> check_choice("method", "kmeans", ["kmeans", "hdbscan"])
    """
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not one of {listed}")


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Raise :class:`ConfigError` unless ``value`` is an int ``>= minimum``.

    Examples
    --------
    >>> check_int("n_init", 3, minimum=1)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_n_groups(value: object) -> int | Literal["auto"]:
    """Validate an ``n_groups`` parameter: a positive int or ``"auto"``."""
    if isinstance(value, str):
        if value != "auto":
            raise ConfigError(f"n_groups={value!r} is not one of 'auto' or a positive integer")
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"n_groups={value!r} is not one of 'auto' or a positive integer")
    return int(value)


def candidate_ks(k_min: int, k_max: int, n_users: int) -> list[int]:
    """Numbers of groups tried in auto mode: ``k_min .. min(k_max, n_users - 1)``.

    The silhouette needs at least one group with two users, hence ``n_users - 1``.
    """
    return list(range(k_min, min(k_max, n_users - 1) + 1))


# --------------------------------------------------------------------------- base class


class GroupClusterer(ClusterMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of every way of grouping users.

    Subclasses store their parameters in ``__init__`` (nothing else), check them in
    :meth:`_check_params` and produce labels in :meth:`_fit_labels`; this class
    validates the data, normalises rows, computes centroids and the silhouette,
    and provides :meth:`predict`. See the module docstring for the learned
    attributes.

    Examples
    --------
    >>> from usergroups.clustering import KMeansGroups
    >>> rng = np.random.default_rng(0)
    >>> X = np.repeat(np.eye(3, dtype=np.float32), 10, axis=0)
    >>> X += 0.01 * rng.standard_normal(X.shape).astype(np.float32)
    >>> model = KMeansGroups(n_groups=3, random_state=0).fit(X)
    >>> model.n_groups_, model.centroids_.shape
    (3, (3, 3))
    """

    labels_: IntVector
    centroids_: FloatMatrix
    n_groups_: int
    k_scores_: dict[int, float]
    silhouette_: float
    n_features_in_: int

    # -- to implement

    @abstractmethod
    def _check_params(self) -> None:
        """Raise :class:`ConfigError` when a parameter is invalid."""

    @abstractmethod
    def _fit_labels(self, X: FloatMatrix) -> tuple[IntVector, dict[int, float]]:
        """Group the rows of ``X`` (already validated and L2-normalised).

        Returns
        -------
        labels : ndarray of shape (n_users,), int
            Group per user, ``-1`` for noise; need not be contiguous.
        k_scores : dict[int, float]
            Silhouette per number of groups tried (empty unless auto).
        """

    # -- shared

    def fit(self, X: FloatMatrix, y: None = None) -> Self:
        """Group the users.

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)
            User vectors, compared by cosine.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        self
        """
        self._check_params()
        X = check_vectors(X)
        self._fit_normalized(normalize_rows(X))
        return self

    def _fit_normalized(self, Xn: FloatMatrix) -> None:
        labels, k_scores = self._fit_labels(Xn)
        self._set_result(Xn, labels, k_scores)

    def _set_result(
        self, Xn: FloatMatrix, labels: npt.ArrayLike, k_scores: dict[int, float]
    ) -> None:
        labels, n_groups = compact_labels(labels)
        self.labels_ = labels
        self.n_groups_ = n_groups
        self.centroids_ = group_centroids(Xn, labels, n_groups)
        self.k_scores_ = dict(k_scores)
        sample_size, random_state = self._silhouette_params()
        self.silhouette_ = cosine_silhouette(
            Xn, labels, sample_size=sample_size, random_state=random_state
        )
        self.n_features_in_ = Xn.shape[1]
        # one line per fit: a validation grid fits hundreds of times (-v in the CLI shows it)
        logger.debug(
            "%s: %d groups, %d noise users, silhouette %.4f",
            type(self).__name__,
            n_groups,
            int((labels == NOISE).sum()),
            self.silhouette_,
        )

    def _silhouette_params(self) -> tuple[int, int | None]:
        """Sample size and seed of the silhouette; parameters of the same names by default."""
        return int(getattr(self, "silhouette_sample", 5000)), getattr(self, "random_state", None)

    def predict(self, X: FloatMatrix) -> IntVector:
        """Place users into the learned groups: the nearest centroid by cosine.

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)

        Returns
        -------
        ndarray of shape (n_users,), int64
            Group of each user; never ``-1`` unless the model has no group at all.
            On the training data this agrees with ``labels_`` for centroid methods
            (k-means) up to users on a boundary; density and hierarchical methods
            may differ, and noise users get their nearest group.
        """
        self.check_is_fitted()
        X = check_vectors(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input; use vectors from the same model"
            )
        return nearest_centroid(X, self.centroids_)

    def check_is_fitted(self) -> None:
        """Raise :class:`ClustererNotFittedError` unless :meth:`fit` has run.

        It is both :class:`usergroups.errors.NotFittedError` and scikit-learn's
        ``NotFittedError``.
        """
        try:
            sklearn_check_is_fitted(self, "labels_")
        except SklearnNotFittedError as exc:
            raise ClustererNotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) with user "
                "vectors of shape (n_users, n_features) first"
            ) from exc

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "labels_")
