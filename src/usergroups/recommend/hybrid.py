"""Personal recommendations blended with the group signal.

:class:`PrunedEASE` is EASE (Steck, 2019: a closed-form item-item autoencoder) whose
item-item weight matrix is pruned to the ``keep`` largest weights per item, so that it
fits in a model directory (a dense matrix for 10k items is 400 MB; pruned to 1,024 per
item it is about 80 MB) and scores stay cheap to serve. How many weights to keep is
chosen on validation data carved from training (``recommend.ease_keep = "auto"``, see
:mod:`usergroups.selection`): the fewest within one standard error of the best. What is
evaluated is the pruned matrix, the one that is shipped.

:func:`blend` mixes a user-level score row with the user's group row after scaling each
row to a maximum of 1; the weight is chosen on validation data by
:func:`usergroups.selection.select`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, NotFittedError
from usergroups.linalg import ease_weights

__all__ = ["PrunedEASE", "blend", "personal_weights", "row_scaled"]


class PrunedEASE:
    """EASE with ``l2`` regularisation, pruned to ``keep`` weights per item.

    The solve is :func:`usergroups.linalg.ease_weights`, the one the ``EASE`` baseline uses.

    Examples
    --------
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> ease = PrunedEASE(l2=1.0).fit(x)
    >>> ease.scores(x[:1]).shape
    (1, 3)
    """

    def __init__(self, l2: float = 250.0, keep: int = 1024) -> None:
        self.l2 = l2
        self.keep = keep

    def fit(self, x: sp.spmatrix) -> PrunedEASE:
        if self.l2 <= 0:
            raise ConfigError(f"PrunedEASE: l2 must be > 0, got {self.l2}")
        if self.keep < 1:
            raise ConfigError(f"PrunedEASE: keep must be >= 1, got {self.keep}")
        return self.fit_dense(ease_weights(x, self.l2))

    def fit_dense(self, b: npt.NDArray[Any]) -> PrunedEASE:
        """Prune already solved weights ``b`` (n_items, n_items) to ``keep`` per item, so
        several prunings of one solve can be compared without solving again."""
        if self.keep < 1:
            raise ConfigError(f"PrunedEASE: keep must be >= 1, got {self.keep}")
        self.weights_ = _prune_columns(np.asarray(b, dtype=np.float32), int(self.keep))
        return self

    def scores(self, rows: sp.spmatrix) -> FloatMatrix:
        """Scores of users given their (binary) item rows; shape (n_rows, n_items)."""
        if not hasattr(self, "weights_"):
            raise NotFittedError("PrunedEASE is not fitted; call fit(x) first")
        r = sp.csr_matrix(rows, dtype=np.float32, copy=True)  # never touch the caller's
        r.data[:] = 1.0
        return np.asarray((r @ self.weights_).toarray(), dtype=np.float32)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        w = sp.csc_matrix(self.weights_)
        return {
            "ease_data": w.data.astype(np.float32),
            "ease_indices": w.indices.astype(np.int32),
            "ease_indptr": w.indptr.astype(np.int64),
            "ease_shape": np.array(w.shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> PrunedEASE:
        shape = tuple(int(v) for v in arrays["ease_shape"])
        ease = cls()
        ease.weights_ = sp.csc_matrix(
            (arrays["ease_data"], arrays["ease_indices"], arrays["ease_indptr"]), shape=shape
        ).tocsr()
        return ease


def _prune_columns(b: npt.NDArray[np.float32], keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest-magnitude weights of each column of ``b``."""
    n = b.shape[0]
    if keep >= n:
        return sp.csr_matrix(b)
    top = np.argpartition(-np.abs(b), keep - 1, axis=0)[:keep]  # (keep, n_cols)
    cols = np.broadcast_to(np.arange(b.shape[1]), top.shape)
    vals = b[top, cols]
    return sp.csr_matrix((vals.ravel(), (top.ravel(), cols.ravel())), shape=b.shape)


def row_scaled(scores: npt.NDArray[Any]) -> FloatMatrix:
    """Each row divided by its largest absolute value (rows of zeros stay zero)."""
    s = np.asarray(scores, dtype=np.float32)
    m = np.abs(s).max(axis=1, keepdims=True) if s.size else np.ones((len(s), 1), np.float32)
    return np.divide(s, m, out=np.zeros_like(s), where=m > 0)


def blend(
    group: npt.NDArray[Any], personal: npt.NDArray[Any], weight: float | npt.NDArray[Any]
) -> FloatMatrix:
    """``(1 - weight) * group + weight * personal``, each row scaled to a maximum of 1.

    ``weight`` is one number or one per row.

    Examples
    --------
    >>> blend(np.array([[2.0, 1.0]]), np.array([[0.0, 4.0]]), 0.5).tolist()
    [[0.5, 0.75]]
    """
    w = np.asarray(weight, dtype=np.float32)
    if np.any((w < 0.0) | (w > 1.0)):
        raise ConfigError(f"blend weights must be in [0, 1], got {weight}")
    if w.ndim == 0:
        if w == 0.0:
            return row_scaled(group)
        if w == 1.0:
            return row_scaled(personal)
    else:
        w = w.reshape(-1, 1)
    return (1.0 - w) * row_scaled(group) + w * row_scaled(personal)


def personal_weights(seen: sp.spmatrix, weight: float, shrinkage: float) -> npt.NDArray[np.float32]:
    """Per-user weight of the personal model: ``weight * n / (n + shrinkage)``.

    ``n`` is the number of items in each row of ``seen``; users with little history lean
    on their group, heavy users on their own history.

    Examples
    --------
    >>> x = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 1]], dtype=np.float32))
    >>> personal_weights(x, 1.0, 1.0).tolist()
    [0.5, 0.75]
    """
    n = np.diff(sp.csr_matrix(seen).indptr).astype(np.float32)
    if shrinkage <= 0:
        return np.full(len(n), weight, dtype=np.float32)
    return (weight * n / (n + shrinkage)).astype(np.float32)
