"""Personal recommendations blended with the group signal.

:class:`PrunedEASE` is EASE (Steck, 2019: a closed-form item-item autoencoder) whose
item-item weight matrix is pruned to the ``keep`` largest weights per item, so that it
fits in a model directory (a dense matrix for 10k items is 400 MB; pruned to 1,024 per
item it is about 80 MB) and scores stay cheap to serve. How many weights to keep is
chosen on validation data carved from training (``recommend.ease_keep = "auto"``, see
:mod:`usergroups.selection`): the fewest within one standard error of the best. What is
evaluated is the pruned matrix, the one that is shipped.

EASE's solve needs a dense ``n_items²`` float64 matrix (800 MB at 10,000 items, 80 GB at
100,000); above ``recommend.ease_max_items`` items the personal model is :class:`ItemKNN`,
a sparse item-kNN computed block by block with the same interface. Below it, with
``recommend.personal = "auto"``, both are candidates (:func:`personal_candidates`) and the
validation carve picks one (item-kNN wins on small catalogues with short histories).

:func:`blend` mixes a user-level score row with the user's group row after scaling each
row to a maximum of 1; the weight is chosen on validation data by
:func:`usergroups.selection.select`, which keeps a blend only when it beats each plain
part (global popularity, the group part alone, the personal model alone) and otherwise
ranks by the best plain part. The group part is then the groups' popularity or, with
``group_part = "popularity"``, global popularity (:func:`group_rows_for`: every user is
treated as outside every group, whose scores are global popularity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, NotFittedError
from usergroups.linalg import BLOCK_CELLS, ease_weights, item_knn_weights

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = [
    "GROUP_PARTS",
    "PERSONAL_MODELS",
    "ItemKNN",
    "PrunedEASE",
    "blend",
    "ease_fits",
    "group_rows_for",
    "new_personal",
    "personal_candidates",
    "personal_from_arrays",
    "personal_model_for",
    "personal_weights",
    "personal_weights_for",
    "row_scaled",
]

PERSONAL_MODELS = ("ease", "itemknn")
"""The personal models, by the name ``recommend.personal`` gives them."""

GROUP_PARTS = ("groups", "popularity")
"""What the group part of a recommendation ranks by: the user's group's (smoothed)
popularity, or global popularity (chosen on validation when it beats the groups)."""


def group_rows_for(groups: npt.ArrayLike, group_part: str) -> npt.NDArray[np.int64]:
    """The group indices to score for ``group_part``: as given for ``"groups"``, all -1
    (outside every group: global popularity) for ``"popularity"``.

    Examples
    --------
    >>> group_rows_for([0, 2], "popularity").tolist(), group_rows_for([0, 2], "groups").tolist()
    ([-1, -1], [0, 2])
    """
    g = np.asarray(groups, dtype=np.int64)
    if group_part == "groups":
        return g
    if group_part == "popularity":
        return np.full_like(g, -1)
    raise ConfigError(f"group_part={group_part!r} is not one of {', '.join(GROUP_PARTS)}")


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

    name = "ease"

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
        self.weights_ = _prune_columns(b, int(self.keep))
        return self

    def scores(self, rows: sp.spmatrix) -> FloatMatrix:
        """Scores of users given their (binary) item rows; shape (n_rows, n_items)."""
        if not hasattr(self, "weights_"):
            raise NotFittedError("PrunedEASE is not fitted; call fit(x) first")
        return _item_item_scores(rows, self.weights_)

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


class ItemKNN:
    """Item-kNN: the ``n_neighbors`` most similar items of each item, by (asymmetric) cosine.

    The personal model for catalogues too large for EASE's dense solve
    (``recommend.ease_max_items``): :func:`usergroups.linalg.item_knn_weights` computes the
    similarities block by block from the sparse co-occurrence counts, so memory is
    O(nnz + n_items · n_neighbors). Same interface as :class:`PrunedEASE`: ``weights_``
    (sparse, shape (n_items, n_items)) scores a user as ``X_u @ weights_`` and spreads a
    new user's retrieved items (:mod:`usergroups.recommend.new_users`).

    Parameters
    ----------
    n_neighbors : int, default 100
    alpha : float in [0, 1], default 0.5
        0.5 is the cosine; see :func:`~usergroups.linalg.item_knn_weights`.

    Examples
    --------
    >>> x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> knn = ItemKNN(n_neighbors=1).fit(x)
    >>> knn.scores(x[:1]).astype(float).round(3).tolist()
    [[0.816, 0.816, 0.0]]
    """

    name = "itemknn"

    def __init__(self, n_neighbors: int = 100, alpha: float = 0.5) -> None:
        self.n_neighbors = n_neighbors
        self.alpha = alpha

    def fit(self, x: sp.spmatrix) -> ItemKNN:
        self.weights_ = item_knn_weights(x, int(self.n_neighbors), alpha=float(self.alpha))
        return self

    def scores(self, rows: sp.spmatrix) -> FloatMatrix:
        """Scores of users given their (binary) item rows; shape (n_rows, n_items)."""
        if not hasattr(self, "weights_"):
            raise NotFittedError("ItemKNN is not fitted; call fit(x) first")
        return _item_item_scores(rows, self.weights_)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        w = sp.csr_matrix(self.weights_)
        return {
            "knn_data": w.data.astype(np.float32),
            "knn_indices": w.indices.astype(np.int32),
            "knn_indptr": w.indptr.astype(np.int64),
            "knn_shape": np.array(w.shape, dtype=np.int64),
            "knn_params": np.array([self.n_neighbors, self.alpha], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> ItemKNN:
        shape = tuple(int(v) for v in arrays["knn_shape"])
        n_neighbors, alpha = (float(v) for v in arrays["knn_params"])
        knn = cls(n_neighbors=int(n_neighbors), alpha=alpha)
        knn.weights_ = sp.csr_matrix(
            (arrays["knn_data"], arrays["knn_indices"], arrays["knn_indptr"]), shape=shape
        )
        return knn


def personal_from_arrays(arrays: dict[str, npt.NDArray[Any]]) -> PrunedEASE | ItemKNN | None:
    """The personal model stored in a model directory's arrays, or None (models saved
    before item-kNN existed hold ``ease_*`` arrays or none)."""
    if "knn_data" in arrays:
        return ItemKNN.from_arrays(arrays)
    if "ease_data" in arrays:
        return PrunedEASE.from_arrays(arrays)
    return None


def ease_fits(n_items: int, max_items: int) -> bool:
    """Whether EASE's dense solve is allowed for ``n_items`` (``recommend.ease_max_items``).

    Examples
    --------
    >>> ease_fits(10_000, 10_000), ease_fits(10_001, 10_000)
    (True, False)
    """
    return int(n_items) <= int(max_items)


def personal_model_for(
    setting: str, n_items: int, max_items: int, n_neighbors: int = 100
) -> tuple[str | None, str]:
    """Which personal model a fit uses, and why when the catalogue's size decided it.

    ``recommend.personal``: ``"none"`` gives None; ``"itemknn"`` item-kNN; ``"ease"`` and
    ``"auto"`` EASE (for ``"auto"``, the first of :func:`personal_candidates`, which the
    validation carve may replace by item-kNN) when ``n_items <= max_items``
    (``recommend.ease_max_items``), else item-kNN with a reason (an explicit ``"ease"``
    above the limit is switched too: raise ``ease_max_items`` to force the dense solve).

    Returns
    -------
    model : {"ease", "itemknn"} or None
    reason : str
        Empty unless the size forced item-kNN.

    Examples
    --------
    >>> personal_model_for("auto", 500, 10_000)
    ('ease', '')
    >>> personal_model_for("auto", 20_000, 10_000)[0]
    'itemknn'
    """
    if setting == "none":
        return None, ""
    if setting == "itemknn":
        return "itemknn", ""
    if setting not in ("auto", "ease"):
        raise ConfigError(
            f"recommend.personal={setting!r} is not one of 'auto', 'ease', 'itemknn', 'none'"
        )
    if ease_fits(n_items, max_items):
        return "ease", ""
    gb = 8.0 * float(n_items) ** 2 / 1e9
    return "itemknn", (
        f"the catalogue has {n_items:,} items, above recommend.ease_max_items={max_items:,} "
        f"(EASE's dense solve would hold {gb:.1f} GB): the personal model is item-kNN with "
        f"{n_neighbors} neighbours per item"
    )


def personal_candidates(
    setting: str, n_items: int, max_items: int, n_neighbors: int = 100
) -> tuple[tuple[str, ...], str]:
    """The personal models a fit may choose among on validation, and why when the
    catalogue's size ruled EASE out.

    ``"auto"``: EASE and item-kNN when EASE fits (``n_items <= max_items``), else item-kNN
    alone; an explicit model is the only candidate (``"ease"`` above the limit becomes
    item-kNN, as :func:`personal_model_for` says); ``"none"``: no candidate.

    Examples
    --------
    >>> personal_candidates("auto", 500, 10_000)
    (('ease', 'itemknn'), '')
    >>> personal_candidates("auto", 20_000, 10_000)[0]
    ('itemknn',)
    >>> personal_candidates("ease", 500, 10_000)
    (('ease',), '')
    """
    model, reason = personal_model_for(setting, n_items, max_items, n_neighbors)
    if model is None:
        return (), ""
    if setting == "auto" and model == "ease":
        return PERSONAL_MODELS, ""
    return (model,), reason


def new_personal(model: str, *, l2: float, keep: int, n_neighbors: int) -> PrunedEASE | ItemKNN:
    """An unfitted personal model named by :func:`personal_model_for`."""
    if model == "ease":
        return PrunedEASE(l2=l2, keep=keep)
    if model == "itemknn":
        return ItemKNN(n_neighbors=n_neighbors)
    raise ConfigError(f"personal model {model!r} is not one of {', '.join(PERSONAL_MODELS)}")


def _item_item_scores(rows: sp.spmatrix, weights: sp.spmatrix) -> FloatMatrix:
    r = sp.csr_matrix(rows, dtype=np.float32, copy=True)  # never touch the caller's
    r.data[:] = 1.0
    return np.asarray((r @ weights).toarray(), dtype=np.float32)


def _prune_columns(b: npt.NDArray[Any], keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest-magnitude weights of each column of ``b``, as float32.

    Columns are pruned a block at a time, so the temporaries (magnitudes, the partition's
    indices) stay at :data:`~usergroups.linalg.BLOCK_CELLS` entries instead of ``b``'s size.
    """
    n_rows, n_cols = b.shape
    if keep >= n_rows:
        return sp.csr_matrix(np.asarray(b, dtype=np.float32))
    step = max(1, BLOCK_CELLS // max(n_rows, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n_cols, step):
        block = np.asarray(b[:, start : start + step], dtype=np.float32)
        top = np.argpartition(-np.abs(block), keep - 1, axis=0)[:keep]  # (keep, n_block)
        within = np.broadcast_to(np.arange(block.shape[1]), top.shape)
        rows.append(top.ravel())
        cols.append((within + start).ravel())
        vals.append(block[top, within].ravel())
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols)
    )


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
    return personal_weights_for(np.diff(sp.csr_matrix(seen).indptr), weight, shrinkage)


def personal_weights_for(
    n_seen: npt.ArrayLike, weight: float, shrinkage: float
) -> npt.NDArray[np.float32]:
    """:func:`personal_weights` of users who have seen ``n_seen`` items each (the answer
    path counts them without scipy: :mod:`usergroups.answers`).

    Examples
    --------
    >>> personal_weights_for([1, 3], 1.0, 1.0).tolist()
    [0.5, 0.75]
    """
    n = np.asarray(n_seen).astype(np.float32)
    if shrinkage <= 0:
        return np.full(len(n), weight, dtype=np.float32)
    return (weight * n / (n + shrinkage)).astype(np.float32)
