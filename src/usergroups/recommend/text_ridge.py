"""A linear text → item map for new users: ridge regression from one review to its
author's items.

A new user known by one review has no history; the best signal measured on the cold
protocol of DESIGN.md is the closed-form ridge regression of each training review's
(frozen) vector onto its author's normalised item row: ``W = (T'T + l2 I)^-1 T'Y``, a
``(dim + 1) x n_items`` matrix (with an intercept). One solve of a ``dim x dim`` system;
deterministic; ``l2`` is chosen on held-out new users by :func:`usergroups.selection.select`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError, NotFittedError

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = ["TextItemRidge"]


class TextItemRidge:
    """Ridge regression from text vectors to the item rows of their authors.

    Examples
    --------
    >>> t = np.eye(3, dtype=np.float32)
    >>> y = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    >>> int(TextItemRidge(l2=0.1).fit(t, y).scores(t[:1]).argmax())
    0
    """

    def __init__(self, l2: float = 100.0) -> None:
        self.l2 = l2

    def fit(self, texts: npt.NDArray[Any], authors_items: sp.spmatrix) -> TextItemRidge:
        """``texts``: (n_texts, dim); ``authors_items``: (n_texts, n_items), its author's row."""
        if self.l2 <= 0:
            raise ConfigError(f"TextItemRidge: l2 must be > 0, got {self.l2}")
        t = np.asarray(texts, dtype=np.float64)
        y = sp.csr_matrix(authors_items, dtype=np.float64, copy=True)
        if t.ndim != 2 or len(t) != y.shape[0]:
            raise DataError(
                f"TextItemRidge: {len(t)} text vectors for {y.shape[0]} item rows; "
                "pass one author row per text"
            )
        y.data[:] = 1.0
        counts = np.diff(y.indptr).astype(np.float64)
        y = sp.csr_matrix(sp.diags(1.0 / np.maximum(counts, 1.0)) @ y)
        t1 = np.hstack([t, np.ones((len(t), 1))])
        gram = t1.T @ t1
        gram[np.diag_indices_from(gram)] += self.l2
        rhs = np.asarray((y.T @ t1).T)
        self.weights_ = np.linalg.solve(gram, rhs).astype(np.float32)
        return self

    def scores(self, texts: npt.NDArray[Any]) -> FloatMatrix:
        """Item scores of text vectors; shape (n, n_items)."""
        if not hasattr(self, "weights_"):
            raise NotFittedError("TextItemRidge is not fitted; call fit(texts, items) first")
        t = np.asarray(texts, dtype=np.float32)
        if t.ndim != 2 or t.shape[1] + 1 != self.weights_.shape[0]:
            raise DataError(
                f"TextItemRidge expects vectors of dimension {self.weights_.shape[0] - 1}, "
                f"got shape {t.shape}; was the model fitted with another encoder?"
            )
        return (t @ self.weights_[:-1] + self.weights_[-1]).astype(np.float32)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        if not hasattr(self, "weights_"):
            raise NotFittedError("TextItemRidge is not fitted")
        return {"ridge_W": self.weights_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> TextItemRidge:
        ridge = cls()
        ridge.weights_ = np.asarray(arrays["ridge_W"], dtype=np.float32)
        return ridge
