"""Baseline recommenders with one small interface, measured beside the project's own method.

Every baseline follows the :class:`Recommender` protocol: the constructor stores
its parameters, ``fit(train)`` learns from a binary user × item matrix
(implicit feedback: every stored entry is a positive, values are ignored) and
``score(user_indices)`` returns a dense score matrix over all items. Masking of
seen items and ranking happen in :func:`usergroups.evaluation.evaluate_recommender`.

=====================================  ======================================================
``PopularityRecommender`` ("Pop")      number of training users per item
``ItemKNNRecommender`` ("ItemKNN")     cosine item-item similarity, ``n_neighbors`` per item
``EASERecommender`` ("EASE")           closed-form shallow autoencoder, ``l2=250``
``ALSRecommender`` ("ALS")             implicit's alternating least squares, 64 factors
``BPRRecommender`` ("BPR")             implicit's Bayesian personalised ranking, 64 factors
``GroupPopularityRecommender``         popularity among the members of the user's group
=====================================  ======================================================

ALS and BPR need the optional ``implicit`` package (``pip install 'usergroups[bench]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._deps import require
from usergroups._typing import IntVector
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.linalg import canonical_csr, ease_weights, item_knn_weights

__all__ = [
    "BASELINES",
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "GroupPopularityRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "make_baseline",
]

logger = logging.getLogger(__name__)

ScoreMatrix = npt.NDArray[np.float64] | npt.NDArray[np.float32]


@runtime_checkable
class Recommender(Protocol):
    """What :func:`~usergroups.evaluation.evaluate_recommender` needs from a recommender."""

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        """Learn from a user × item matrix of shape (n_users, n_items); return ``self``."""
        ...

    def score(self, user_indices: npt.ArrayLike) -> ScoreMatrix:
        """Scores of shape (len(user_indices), n_items); higher is better."""
        ...


class _BaseRecommender:
    """Shared validation: a binary csr training matrix and fitted-state checks."""

    n_users_: int
    n_items_: int

    def _prepare(self, train: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
        if not sp.issparse(train):
            raise DataError(
                f"{type(self).__name__}.fit expects a scipy sparse user x item matrix; got "
                f"{type(train).__name__}. Pass split.train"
            )
        x = canonical_csr(train, np.float32)
        x.data[:] = 1.0  # implicit feedback: any stored interaction is one positive
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{type(self).__name__}.fit got an empty matrix of shape {x.shape}")
        self.n_users_, self.n_items_ = int(x.shape[0]), int(x.shape[1])
        return x

    def _users(self, user_indices: npt.ArrayLike) -> IntVector:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(train) before score()"
            )
        users = np.asarray(user_indices, dtype=np.int64).ravel()
        if users.size and (users.min() < 0 or users.max() >= self.n_users_):
            raise DataError(
                f"user indices must lie in [0, {self.n_users_}); got values in "
                f"[{users.min()}, {users.max()}]"
            )
        return users

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


class PopularityRecommender(_BaseRecommender):
    """Global popularity: every user gets the number of training users per item.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rec = PopularityRecommender().fit(sp.csr_matrix([[1, 0, 1], [1, 0, 0]]))
    >>> rec.score([0]).tolist()
    [[2.0, 0.0, 1.0]]
    """

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        x = self._prepare(train)
        self.item_counts_ = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        return self

    def score(self, user_indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        users = self._users(user_indices)
        return np.tile(self.item_counts_, (len(users), 1))


class ItemKNNRecommender(_BaseRecommender):
    """Item-based k-nearest neighbours with cosine similarity.

    ``score(u, j) = sum of sim(i, j)`` over the items ``i`` of user ``u`` that are
    among the ``n_neighbors`` items most similar to ``j`` (cosine between item
    columns of the binary matrix, no shrinkage).

    Parameters
    ----------
    n_neighbors : int or None
        Neighbours kept per item; ties towards the lower item index. ``None`` keeps
        every item with a positive similarity (DESIGN.md's reference ItemKNN row
        matches this setting on Amazon Musical Instruments).
    batch_size : int
        Items whose similarities are computed at once (memory: n_items × batch_size floats).
    """

    def __init__(self, n_neighbors: int | None = 100, *, batch_size: int = 1024) -> None:
        self.n_neighbors = n_neighbors
        self.batch_size = batch_size

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        if self.n_neighbors is not None:
            _check_positive_int("n_neighbors", self.n_neighbors)
        _check_positive_int("batch_size", self.batch_size)
        x = self._prepare(train)
        n_items = x.shape[1]
        k = n_items - 1 if self.n_neighbors is None else min(self.n_neighbors, n_items - 1)
        if k == 0:
            self.similarity_ = sp.csr_matrix((n_items, n_items), dtype=np.float64)
        else:
            # the project's one item-kNN; its rows hold each item's nearest items, so the
            # transpose keeps, for every target j, the k items most similar to j
            weights = item_knn_weights(
                x, k, block_cells=self.batch_size * n_items, dtype=np.float64
            )
            self.similarity_ = sp.csr_matrix(weights.T)
        self.train_ = x
        return self

    def score(self, user_indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        users = self._users(user_indices)
        return np.asarray((self.train_[users] @ self.similarity_).toarray(), dtype=np.float64)


class EASERecommender(_BaseRecommender):
    """EASE (Steck 2019): a closed-form item-item model with a zero diagonal.

    ``B = I - P / diag(P)`` with ``P = (XᵀX + l2·I)⁻¹``; ``score(u) = X_u B``
    (:func:`usergroups.linalg.ease_weights`, also behind the pipeline's pruned EASE).
    Memory grows with ``n_items²`` (8 bytes each): 10,000 items need ~0.8 GB.

    Parameters
    ----------
    l2 : float
        L2 regularisation, not tuned per dataset. 250 reproduces ``DESIGN.md``'s
        reference EASE row exactly (NDCG@10 0.0728 / 0.0391 / 0.0661 on ml-100k /
        ml-latest-small / Amazon Musical Instruments); 500 gives 0.0737 / 0.0360 /
        0.0642.
    """

    def __init__(self, l2: float = 250.0) -> None:
        self.l2 = l2

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        if not float(self.l2) > 0:
            raise ConfigError(f"l2 must be positive; got {self.l2}")
        x = self._prepare(train)
        n_items = x.shape[1]
        if n_items > 20_000:
            logger.warning(
                "EASE on %d items needs about %.1f GB of memory", n_items, 3 * 8 * n_items**2 / 1e9
            )
        self.weights_ = ease_weights(x, float(self.l2))
        self.train_ = x.astype(np.float64)
        return self

    def score(self, user_indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        users = self._users(user_indices)
        return np.asarray(self.train_[users] @ self.weights_, dtype=np.float64)


class _ImplicitRecommender(_BaseRecommender):
    """Factor models from the ``implicit`` package (CPU), scored as user · item factors."""

    _module = ""
    _class = ""

    def __init__(
        self, factors: int = 64, *, random_state: int | None = 0, num_threads: int = 1
    ) -> None:
        self.factors = factors
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        _check_positive_int("factors", self.factors)
        module = require(self._module, "bench", package="implicit")
        threadpoolctl = require("threadpoolctl", "bench")
        x = self._prepare(train)
        # implicit's own advice (it warns on construction otherwise): its solvers run their
        # own threads, and a BLAS thread pool underneath slows them down
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = getattr(module, self._class)(
                factors=self.factors,
                random_state=self.random_state,
                num_threads=self.num_threads,
                use_gpu=False,
            )
            model.fit(x, show_progress=False)  # implicit >= 0.5 takes user x item
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score(self, user_indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        users = self._users(user_indices)
        return (self.user_factors_[users] @ self.item_factors_.T).astype(np.float64)


class ALSRecommender(_ImplicitRecommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky) from ``implicit``.

    Library defaults (15 iterations, regularisation 0.01, alpha 1.0) except
    ``factors``. Deterministic for a fixed ``random_state``.

    Parameters
    ----------
    factors : int
        Latent factors (``DESIGN.md``: 64).
    random_state : int or None
        Seed of the factor initialisation.
    num_threads : int
        Solver threads; 0 means all cores.
    """

    _module = "implicit.als"
    _class = "AlternatingLeastSquares"


class BPRRecommender(_ImplicitRecommender):
    """Bayesian personalised ranking from ``implicit``.

    Library defaults (100 iterations, learning rate 0.01, regularisation 0.01)
    except ``factors``; implicit adds one item-bias factor. With
    ``num_threads=1`` (the default) it is deterministic for a fixed seed; more
    threads update factors concurrently and results vary slightly.

    Parameters
    ----------
    factors : int
        Latent factors (``DESIGN.md``: 64).
    random_state : int or None
        Seed of the initialisation and of the negative sampling.
    num_threads : int
        Training threads; 0 means all cores.
    """

    _module = "implicit.bpr"
    _class = "BayesianPersonalizedRanking"


class GroupPopularityRecommender(_BaseRecommender):
    """Popularity among the members of the user's group; noise users get global popularity.

    Parameters
    ----------
    labels : array-like of shape (n_users,)
        Group of every user of the training matrix (rows in the same order); a
        negative label marks a noise user.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> train = sp.csr_matrix([[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    >>> rec = GroupPopularityRecommender([0, 0, -1]).fit(train)
    >>> rec.score([0, 2]).tolist()
    [[2.0, 1.0, 0.0], [2.0, 1.0, 1.0]]
    """

    def __init__(self, labels: npt.ArrayLike) -> None:
        self.labels = labels

    def fit(self, train: sp.spmatrix | sp.sparray) -> Self:
        x = self._prepare(train)
        labels = np.asarray(self.labels)
        if (
            labels.ndim != 1
            or len(labels) != x.shape[0]
            or not np.issubdtype(labels.dtype, np.integer)
        ):
            raise DataError(
                f"labels must be integers of shape ({x.shape[0]},), one per user of the "
                f"training matrix; got dtype {labels.dtype} and shape {labels.shape}"
            )
        groups, codes = np.unique(labels[labels >= 0], return_inverse=True)
        members = np.flatnonzero(labels >= 0)
        membership = sp.csr_matrix(
            (np.ones(len(members)), (codes, members)), shape=(len(groups), x.shape[0])
        )
        self.group_ids_ = groups
        self.group_counts_ = np.asarray((membership @ x).toarray(), dtype=np.float64)
        self.item_counts_ = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        row = np.full(x.shape[0], -1, dtype=np.int64)
        row[members] = codes
        self.user_group_row_ = row
        return self

    def score(self, user_indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        users = self._users(user_indices)
        rows = self.user_group_row_[users]
        out = np.empty((len(users), self.n_items_), dtype=np.float64)
        grouped = rows >= 0
        out[grouped] = self.group_counts_[rows[grouped]]
        out[~grouped] = self.item_counts_
        return out


BASELINES: dict[str, Callable[..., Recommender]] = {
    "Pop": PopularityRecommender,
    "ItemKNN": ItemKNNRecommender,
    "EASE": EASERecommender,
    "ALS": ALSRecommender,
    "BPR": BPRRecommender,
}
"""The baselines of ``DESIGN.md`` by report name, with their documented defaults."""


def make_baseline(name: str, **params: Any) -> Recommender:
    """Build a baseline by report name (``"Pop"``, ``"ItemKNN"``, ``"EASE"``, ``"ALS"``, ``"BPR"``).

    Examples
    --------
    >>> make_baseline("EASE", l2=100.0)
    EASERecommender(l2=100.0)
    """
    try:
        factory = BASELINES[name]
    except KeyError:
        options = ", ".join(repr(n) for n in BASELINES)
        raise ConfigError(f"baseline {name!r} is not one of {options}") from None
    return factory(**params)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer; got {value!r}")
