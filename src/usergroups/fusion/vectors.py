"""User vectors: pooled text vectors, behaviour vectors and their weighted fusion.

The *semantic* part lives in the encoder's space: the pooled vectors of what a user wrote
or, for a user with no text, the mean vector of the items they interacted with (items are
embedded from their metadata, or from the texts written about them). Because it lives in
the encoder's space, a brand-new user's text can be compared with it directly.

The *behaviour* part comes from the interaction matrix: a truncated SVD of the
popularity-damped, row-normalised matrix, or the mean of the user's item vectors.

The fused vector is ``[sqrt(w) * semantic, sqrt(1 - w) * behaviour]`` with both blocks
L2-normalised first, then the whole row L2-normalised, so that ``w`` really is the share of
the cosine similarity that comes from text.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from usergroups._typing import FloatMatrix
from usergroups.data import Dataset
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import (
    DEFAULT_TEXT_WEIGHT,
    damped_unit_rows,
    fuse_blocks,
    mean_rows,
    pool_rows,
    unit_rows,
)

__all__ = ["UserVectorBuilder", "behaviour_block", "l2_normalise", "pool_rows"]

logger = logging.getLogger(__name__)

# the public names this package has always had; one implementation, in usergroups.linalg
l2_normalise = unit_rows


class UserVectorBuilder(BaseEstimator):
    """Build per-user vectors from text vectors and the interaction matrix.

    Parameters
    ----------
    text_pooling : {"mean", "rating"}
        ``"rating"`` weights each text by its rating (unknown ratings weigh 1), so a user's
        enthusiastic reviews count more than their complaints.
    behaviour : {"svd", "item_mean", "none"}
    n_components : int
        SVD dimensions (capped by the data's size).
    text_weight : float in [0, 1]
        Share of the semantic part in the fused vector.
    random_state : int or None

    Attributes
    ----------
    semantic_ : ndarray of shape (n_users, dim)
        Unit-norm semantic vectors (zero for users with neither text nor items with vectors).
    behaviour_ : ndarray of shape (n_users, n_components)
    vectors_ : ndarray of shape (n_users, dim + n_components)
        The fused, unit-norm user vectors that are clustered.
    item_vectors_ : ndarray of shape (n_items, dim)
        Item vectors in the encoder's space (zero where an item has none).
    has_text_ : ndarray of shape (n_users,), bool

    Examples
    --------
    >>> from usergroups.testing import make_planted
    >>> ds = make_planted(n_users=40, n_groups=2).dataset
    >>> tv = np.random.default_rng(0).normal(size=(len(ds.texts), 8)).astype("float32")
    >>> b = UserVectorBuilder(n_components=4, random_state=0).fit(ds, tv)
    >>> b.vectors_.shape
    (40, 12)
    """

    def __init__(
        self,
        text_pooling: Literal["mean", "rating"] = "mean",
        behaviour: Literal["svd", "item_mean", "none"] = "svd",
        n_components: int = 64,
        text_weight: float = DEFAULT_TEXT_WEIGHT,
        random_state: int | None = None,
    ) -> None:
        self.text_pooling = text_pooling
        self.behaviour = behaviour
        self.n_components = n_components
        self.text_weight = text_weight
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.text_pooling not in ("mean", "rating"):
            raise ConfigError(f"text_pooling={self.text_pooling!r} is not one of 'mean', 'rating'")
        if self.behaviour not in ("svd", "item_mean", "none"):
            raise ConfigError(
                f"behaviour={self.behaviour!r} is not one of 'svd', 'item_mean', 'none'"
            )
        if not 0.0 <= self.text_weight <= 1.0:
            raise ConfigError(f"text_weight must be in [0, 1], got {self.text_weight}")

    def fit(
        self,
        dataset: Dataset,
        text_vectors: np.ndarray,
        item_vectors: np.ndarray | None = None,
    ) -> UserVectorBuilder:
        """Learn user vectors.

        Parameters
        ----------
        dataset : Dataset
        text_vectors : ndarray of shape (len(dataset.texts), dim)
            One vector per row of ``dataset.texts``, in order.
        item_vectors : ndarray of shape (n_items, dim), optional
            Item vectors in the encoder's space (e.g. embedded titles). When absent, an
            item's vector is the mean of the vectors of the texts written about it.
        """
        self._check_params()
        text_vectors = np.asarray(text_vectors, dtype=np.float32)
        if text_vectors.ndim != 2 or len(text_vectors) != len(dataset.texts):
            raise DataError(
                f"text_vectors must have shape ({len(dataset.texts)}, dim), one row per text; "
                f"got {text_vectors.shape}"
            )
        n_users, n_items = dataset.n_users, dataset.n_items
        dim = text_vectors.shape[1]
        texts = dataset.texts
        user_of_text = dataset.user_ids.index(texts["user_id"])
        weights = None
        if self.text_pooling == "rating":
            weights = texts["rating"].fillna(1.0).clip(lower=0.5).to_numpy(np.float32)
        pooled = pool_rows(user_of_text, text_vectors, n_users, weights)
        has_text = np.zeros(n_users, dtype=bool)
        has_text[user_of_text] = True

        if item_vectors is None:
            item_vectors = np.zeros((n_items, dim), dtype=np.float32)
            about = texts["item_id"].notna().to_numpy()
            if about.any():
                known = np.array([i in dataset.item_ids for i in texts.loc[about, "item_id"]])
                idx = np.flatnonzero(about)[known]
                items = dataset.item_ids.index(texts["item_id"].to_numpy()[idx])
                item_vectors = pool_rows(items, text_vectors[idx], n_items)
        item_vectors = unit_rows(item_vectors)
        if item_vectors.shape != (n_items, dim):
            raise DataError(
                f"item_vectors must have shape ({n_items}, {dim}); got {item_vectors.shape}"
            )
        x = dataset.interaction_matrix()
        item_mean = unit_rows(mean_rows(x, item_vectors))

        semantic = np.where(has_text[:, None], unit_rows(pooled), item_mean)
        behaviour, components = behaviour_block(
            x,
            self.behaviour,
            n_components=self.n_components,
            random_state=self.random_state,
            item_vectors=item_vectors,
        )
        if components is not None:
            self.svd_components_ = components
        self.semantic_ = unit_rows(semantic)
        self.behaviour_ = behaviour
        self.item_vectors_ = item_vectors
        self.has_text_ = has_text
        self.vectors_ = self.fuse(self.semantic_, self.behaviour_)
        n_empty = int((np.linalg.norm(self.vectors_, axis=1) == 0).sum())
        if n_empty:
            logger.warning("%d user(s) have neither text nor interactions with a vector", n_empty)
        logger.info(
            "user vectors: %d users, %d with text, semantic dim %d, behaviour dim %d",
            n_users,
            int(has_text.sum()),
            self.semantic_.shape[1],
            self.behaviour_.shape[1],
        )
        return self

    def fuse(self, semantic: np.ndarray, behaviour: np.ndarray) -> FloatMatrix:
        """Weighted concatenation of the two unit-norm blocks, renormalised.

        :func:`usergroups.linalg.fuse_blocks` with ``text_weight``: users missing one
        block (zero row) get their other block at full weight, so a text-only user is not
        pulled toward the origin.
        """
        return fuse_blocks(semantic, behaviour, self.text_weight)


# a user's mean item vector; the old private name is still imported by the tests
_row_mean = mean_rows


def behaviour_block(
    x: sp.spmatrix | sp.sparray,
    kind: Literal["svd", "item_mean", "none"],
    *,
    n_components: int = 64,
    random_state: int | None = None,
    item_vectors: np.ndarray | None = None,
    components: np.ndarray | None = None,
) -> tuple[FloatMatrix, FloatMatrix | None]:
    """The behaviour block of the user vectors, from a user x item matrix.

    The one definition of the block: :class:`UserVectorBuilder` builds it for a fit, the
    validation carve for its candidates (:mod:`usergroups.selection`), and the Spark
    engine's local step for users projected into a fitted model.

    Parameters
    ----------
    x : sparse matrix of shape (n_users, n_items)
        Interactions (any stored non-zero counts as one).
    kind : {"svd", "item_mean", "none"}
        ``"svd"``: a truncated SVD of the popularity-damped, row-normalised matrix
        (:func:`usergroups.linalg.damped_unit_rows`); ``"item_mean"``: the mean of the
        user's item vectors; ``"none"``: no block (zero columns).
    n_components : int
        SVD dimensions (capped by the data's size).
    random_state : int or None
    item_vectors : ndarray of shape (n_items, dim), optional
        Needed by ``"item_mean"``.
    components : ndarray of shape (n_components, n_items), optional
        Fitted SVD components: ``"svd"`` projects the rows on them instead of fitting.

    Returns
    -------
    block : ndarray of shape (n_users, b), float32
        Unit rows (zero rows for users without interactions); ``b = 0`` for ``"none"``.
    components : ndarray of shape (b, n_items) or None
        The SVD components (``"svd"`` only).
    """
    n_users = x.shape[0]
    if kind == "svd":
        if components is not None:
            projected = np.asarray(damped_unit_rows(x) @ components.T, dtype=np.float32)
            return unit_rows(projected), components
        factors, fitted = _svd_behaviour(x, n_components, random_state)
        return unit_rows(factors), fitted
    if kind == "item_mean":
        if item_vectors is None:
            raise ConfigError("behaviour='item_mean' needs item_vectors (n_items, dim)")
        return unit_rows(mean_rows(x, item_vectors)), None
    if kind == "none":
        return np.zeros((n_users, 0), dtype=np.float32), None
    raise ConfigError(f"behaviour={kind!r} is not one of 'svd', 'item_mean', 'none'")


def _svd_behaviour(
    x: sp.spmatrix | sp.sparray, n_components: int, random_state: int | None
) -> tuple[FloatMatrix, FloatMatrix]:
    """Truncated SVD of :func:`~usergroups.linalg.damped_unit_rows` of ``x``: the factors
    (n_users, k) and the components (k, n_items)."""
    from sklearn.decomposition import TruncatedSVD

    n_users, n_items = x.shape
    k = int(min(n_components, n_users - 1, n_items - 1))
    if k < 1 or x.nnz == 0:
        return np.zeros((n_users, 0), dtype=np.float32), np.zeros((0, n_items), dtype=np.float32)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=random_state)
    factors = svd.fit_transform(damped_unit_rows(x)).astype(np.float32)
    return factors, svd.components_.astype(np.float32)
