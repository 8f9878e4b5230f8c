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
from sklearn.decomposition import TruncatedSVD

from usergroups._typing import FloatMatrix
from usergroups.data import Dataset
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import fuse_blocks, mean_rows, pool_rows, unit_rows

__all__ = ["UserVectorBuilder", "l2_normalise", "pool_rows"]

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
        text_weight: float = 0.5,
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
        if self.behaviour == "svd":
            behaviour, components = _svd_behaviour(x, self.n_components, self.random_state)
            self.svd_components_ = components
        elif self.behaviour == "item_mean":
            behaviour = item_mean
        else:
            behaviour = np.zeros((n_users, 0), dtype=np.float32)
        self.semantic_ = unit_rows(semantic)
        self.behaviour_ = unit_rows(behaviour)
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


# a user's mean item vector; the old private name is still imported by the pipeline
_row_mean = mean_rows


def _svd_behaviour(
    x: sp.csr_matrix, n_components: int, random_state: int | None
) -> tuple[FloatMatrix, FloatMatrix]:
    """Truncated SVD of the binary matrix with columns damped by 1/sqrt(popularity).

    Damping keeps the first components from being "how many popular items did you
    consume", which would group users by activity instead of taste.
    """
    n_users, n_items = x.shape
    k = int(min(n_components, n_users - 1, n_items - 1))
    if k < 1 or x.nnz == 0:
        return np.zeros((n_users, 0), dtype=np.float32), np.zeros((0, n_items), dtype=np.float32)
    pop = np.asarray(x.sum(axis=0)).ravel()
    damp = 1.0 / np.sqrt(np.maximum(pop, 1.0))
    xn = sp.csr_matrix(x.multiply(damp[None, :]), dtype=np.float32)
    norms = np.sqrt(np.asarray(xn.multiply(xn).sum(axis=1)).ravel())
    xn = sp.csr_matrix(
        sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ xn
    )
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=random_state)
    factors = svd.fit_transform(xn).astype(np.float32)
    return factors, svd.components_.astype(np.float32)
