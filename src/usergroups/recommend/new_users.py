"""Item scores for a new user known only by one text: three signals, blended.

A new user who wrote one review has no history. Three signals come from the text, each
scored over the whole catalogue and scaled to a row maximum of 1 before they are mixed
(:meth:`NewUserModel.scores`):

``group``
    The popularity of the groups the text belongs to, weighted by the membership
    probabilities (soft membership, PinnerSage's multi-interest idea: a text halfway
    between two groups gets both groups' items), instead of only the most probable
    group's.
``ridge``
    The text → item ridge regression of :class:`~usergroups.recommend.text_ridge.TextItemRidge`
    (each training review regressed onto its author's items).
``spread``
    Retrieval, then spreading: the text is compared with each item's *document*, the
    mean vector of the training reviews written about the item (:func:`item_documents`);
    the similarities become weights ``exp((cos - max) / temperature)``, only the
    ``top_items`` best-matching items are kept, and the item-item model of the fit
    (the personal EASE) spreads them to the items consumed with them
    (:func:`spread_scores`). The reviewed item is what a text is about; the items bought
    with it are what its author buys next.

The weights, the ridge's ``l2`` and ``top_items`` are chosen on held-out new users carved
from training (:func:`usergroups.selection.select`). Measured on the validation carves of
Amazon Musical Instruments and Douban (NDCG@10 of new users known by one review), the
spread alone beat the ridge alone, and the ridge + spread blend beat both (see
``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import csr_weighted_rows, unit_rows
from usergroups.recommend.hybrid import row_scaled

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = [
    "COMPONENTS",
    "SPREAD_TEMPERATURE",
    "NewUserModel",
    "item_documents",
    "soft_group_scores",
    "spread_scores",
    "weight_grid",
]

COMPONENTS = ("group", "ridge", "spread")
"""The signals a new user's scores mix, in the order of :func:`weight_grid`'s tuples."""

SPREAD_TEMPERATURE = 0.1
"""Softmax temperature over the cosines between a text and the item documents.

Cosines of a review with the item documents differ by a few hundredths near the top;
0.1 keeps the best few items at comparable weight and makes the 20th about e^-1 of the
first when it is 0.1 lower.
"""

Membership = Literal["soft", "hard"]


def item_documents(
    text_vectors: npt.NDArray[Any], item_of_text: npt.NDArray[np.int64], n_items: int
) -> FloatMatrix:
    """Each item's document vector: the unit mean of the texts written about it.

    Parameters
    ----------
    text_vectors : ndarray of shape (n_texts, dim)
    item_of_text : ndarray of shape (n_texts,)
        Item index of each text (-1: not about a known item; ignored).
    n_items : int

    Returns
    -------
    ndarray of shape (n_items, dim)
        Zero rows for items nobody wrote about.

    Examples
    --------
    >>> docs = item_documents(np.eye(2), np.array([1, -1]), 3)
    >>> docs.tolist()
    [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
    """
    t = np.asarray(text_vectors, dtype=np.float32)
    items = np.asarray(item_of_text, dtype=np.int64)
    if len(t) != len(items):
        raise DataError(f"item_documents: {len(t)} text vectors for {len(items)} item indices")
    ok = np.flatnonzero((items >= 0) & (items < n_items))
    about = sp.csr_matrix(
        (np.ones(len(ok), np.float32), (items[ok], np.arange(len(ok)))),
        shape=(n_items, len(ok)),
    )
    return unit_rows(np.asarray(about @ t[ok], dtype=np.float32))


def soft_group_scores(proba: npt.NDArray[Any], group_rows: npt.NDArray[Any]) -> FloatMatrix:
    """Group popularity weighted by membership: ``proba @ group_rows`` (rows renormalised).

    Rows of ``proba`` that sum to 0 (noise) get the mean of the group rows.
    """
    p = np.asarray(proba, dtype=np.float32)
    g = np.asarray(group_rows, dtype=np.float32)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / max(p.shape[1], 1))
    return np.asarray(p @ g, dtype=np.float32)


def spread_scores(
    query: npt.NDArray[Any],
    docs: npt.NDArray[Any],
    item_item: Any,
    top_items: int,
    temperature: float = SPREAD_TEMPERATURE,
) -> FloatMatrix:
    """Retrieve the ``top_items`` items whose documents best match each query, spread them.

    Parameters
    ----------
    query : ndarray of shape (n, dim)
        Unit text vectors.
    docs : ndarray of shape (n_items, dim)
        Item documents (:func:`item_documents`).
    item_item : sparse or dense matrix of shape (n_items, n_items)
        Row ``i`` scores the items consumed with item ``i`` (EASE's weights); or an object
        with ``weighted_rows(rows, weights)`` (:class:`usergroups.answers.SparseRows`).
    top_items : int
    temperature : float

    Returns
    -------
    ndarray of shape (n, n_items)
    """
    if top_items < 1:
        raise ConfigError(f"spread_scores: top_items must be >= 1, got {top_items}")
    if temperature <= 0:
        raise ConfigError(f"spread_scores: temperature must be > 0, got {temperature}")
    q = np.asarray(query, dtype=np.float32)
    cos = q @ np.asarray(docs, dtype=np.float32).T
    n, n_items = cos.shape
    if n == 0:
        return np.zeros((0, n_items), dtype=np.float32)
    m = min(int(top_items), n_items)
    top = np.argpartition(-cos, m - 1, axis=1)[:, :m]
    near = np.take_along_axis(cos, top, axis=1)
    weights = np.exp((near - near.max(axis=1, keepdims=True)) / temperature)
    if hasattr(item_item, "weighted_rows"):
        # numpy rows of the item-item model (the answer path, without scipy: issue 25);
        # the same float32 sums in the same order as the product below
        return np.asarray(item_item.weighted_rows(list(top), list(weights)), dtype=np.float32)
    if sp.issparse(item_item) and item_item.format == "csr":
        # one new user (the service's /assign): no sparse matrices to build
        return csr_weighted_rows(
            item_item.indptr,
            item_item.indices,
            item_item.data,
            n_items,
            list(top),
            list(weights.astype(np.float32)),
        )
    retrieved = sp.csr_matrix(
        (weights.ravel().astype(np.float32), top.ravel(), np.arange(0, n * m + 1, m)),
        shape=(n, n_items),
    )
    out = retrieved @ item_item
    return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float32)


def weight_grid(
    step: float = 0.1, fixed: Mapping[str, float] | None = None
) -> list[dict[str, float]]:
    """Every mix of :data:`COMPONENTS` on a simplex grid, honouring fixed weights.

    Parameters
    ----------
    step : float
        Grid spacing of the free weights.
    fixed : mapping, optional
        Weights the config fixes; the group weight is always what the others leave.

    Examples
    --------
    >>> len(weight_grid(0.5))
    6
    >>> weight_grid(0.5, {"ridge": 0.5, "spread": 0.5})
    [{'group': 0.0, 'ridge': 0.5, 'spread': 0.5}]
    """
    fixed = dict(fixed or {})
    n = round(1.0 / step)
    options = {
        name: [fixed[name]] if name in fixed else [round(i * step, 6) for i in range(n + 1)]
        for name in ("ridge", "spread")
    }
    grid = []
    for r in options["ridge"]:
        for s in options["spread"]:
            g = round(1.0 - r - s, 6)
            if g >= -1e-9:
                grid.append({"group": max(g, 0.0), "ridge": r, "spread": s})
    return grid


@dataclass
class NewUserModel:
    """How a new user's text becomes item scores (see the module docstring).

    Parameters
    ----------
    weights : mapping of str to float
        Weight of each of :data:`COMPONENTS` (non-negative, summing to 1).
    ridge : TextItemRidge or None
        Needed when ``weights["ridge"] > 0``.
    item_docs : ndarray of shape (n_items, dim) or None
        Needed when ``weights["spread"] > 0``.
    top_items : int
        Items retrieved before spreading.
    membership : {"soft", "hard"}
        ``"hard"``: only the most probable group's popularity (models saved before the
        spread existed).
    temperature : float
    """

    weights: Mapping[str, float]
    ridge: Any = None
    item_docs: FloatMatrix | None = None
    top_items: int = 20
    membership: Membership = "soft"
    temperature: float = SPREAD_TEMPERATURE
    _checked: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            raise ConfigError(f"NewUserModel: unknown components {sorted(unknown)}")
        w = {name: float(self.weights.get(name, 0.0)) for name in COMPONENTS}
        if any(v < 0 for v in w.values()) or abs(sum(w.values()) - 1.0) > 1e-4:
            raise ConfigError(f"NewUserModel: weights must be >= 0 and sum to 1, got {w}")
        if w["ridge"] > 0 and self.ridge is None:
            raise ConfigError("NewUserModel: a ridge weight needs a fitted TextItemRidge")
        if w["spread"] > 0 and self.item_docs is None:
            raise ConfigError("NewUserModel: a spread weight needs item documents")
        self.weights = w

    @property
    def uses_group_part(self) -> bool:
        """Whether :meth:`components` reads its ``group`` argument (a group weight and soft
        membership): callers skip computing the fine groups' part when it does not."""
        return self.weights["group"] > 0 and self.membership == "soft"

    def components(
        self,
        proba: npt.NDArray[Any],
        group_rows: npt.NDArray[Any],
        semantic: npt.NDArray[Any],
        item_item: Any = None,
        group: npt.NDArray[Any] | None = None,
    ) -> dict[str, FloatMatrix]:
        """Each weighted component's raw scores, shape (n, n_items) each.

        Parameters
        ----------
        proba : ndarray of shape (n, n_groups)
            Group membership of each text.
        group_rows : ndarray of shape (n_groups + 1, n_items)
            Each group's popularity row, then the global popularity (for noise).
        semantic : ndarray of shape (n, dim)
            The texts' frozen sentence vectors.
        item_item : matrix of shape (n_items, n_items), optional
            The item-item model; needed when the spread has a weight.
        group : ndarray of shape (n, n_items), optional
            The group part itself (a model with fine groups: their soft-membership
            scores, :meth:`usergroups.recommend.fine_groups.FineGroups.soft_scores`);
            replaces the segments' popularity weighted by ``proba`` (soft membership; the
            legacy ``"hard"`` rule keeps the most probable segment).
        """
        out: dict[str, FloatMatrix] = {}
        p = np.asarray(proba, dtype=np.float32)
        rows = np.asarray(group_rows, dtype=np.float32)
        if self.weights["group"] > 0:
            if group is not None and self.membership == "soft":
                out["group"] = np.asarray(group, dtype=np.float32)
            elif p.shape[1] == 0:
                out["group"] = np.repeat(rows[-1:], len(p), axis=0)
            elif self.membership == "hard":
                out["group"] = rows[p.argmax(axis=1)]
            else:
                out["group"] = soft_group_scores(p, rows[:-1])
        if self.weights["ridge"] > 0:
            out["ridge"] = self.ridge.scores(semantic)
        if self.weights["spread"] > 0:
            if item_item is None:
                raise ConfigError(
                    "this new-user model spreads retrieved items through an item-item "
                    "model and none was given; pass the personal model's weights"
                )
            assert self.item_docs is not None  # checked in __post_init__
            out["spread"] = spread_scores(
                semantic, self.item_docs, item_item, self.top_items, self.temperature
            )
        return out

    def scores(
        self,
        proba: npt.NDArray[Any],
        group_rows: npt.NDArray[Any],
        semantic: npt.NDArray[Any],
        item_item: Any = None,
        group: npt.NDArray[Any] | None = None,
    ) -> FloatMatrix:
        """The weighted sum of the components, each row-scaled to a maximum of 1
        (``group``: see :meth:`components`)."""
        parts = self.components(proba, group_rows, semantic, item_item, group)
        out: FloatMatrix | None = None
        for name, part in parts.items():
            term = self.weights[name] * row_scaled(part)
            out = term if out is None else out + term
        assert out is not None  # components() returns at least one part
        return out

    def describe(self) -> str:
        """One line: the weights that are in force, e.g. ``ridge 0.5 + spread 0.5 (top 20)``."""
        terms = [f"{name} {self.weights[name]:g}" for name in COMPONENTS if self.weights[name] > 0]
        text = " + ".join(terms)
        if self.weights["group"] > 0:
            text += f" [{self.membership} membership]"
        if self.weights["spread"] > 0:
            text += f" (top {self.top_items} items)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The scalars (``state.json``); arrays go through :meth:`to_arrays`."""
        return {
            "weights": dict(self.weights),
            "top_items": int(self.top_items),
            "membership": self.membership,
            "temperature": float(self.temperature),
        }

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {} if self.item_docs is None else {"newuser_item_docs": self.item_docs}

    @classmethod
    def from_saved(
        cls, data: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]], ridge: Any
    ) -> NewUserModel:
        """The model saved by :meth:`to_dict` and :meth:`to_arrays`."""
        docs = arrays.get("newuser_item_docs")
        membership = data.get("membership", "soft")
        if membership not in ("soft", "hard"):
            raise DataError(f"new-user model: membership {membership!r} is not soft or hard")
        return cls(
            weights=dict(data["weights"]),
            ridge=ridge,
            item_docs=None if docs is None else np.asarray(docs, dtype=np.float32),
            top_items=int(data.get("top_items", 20)),
            membership=membership,
            temperature=float(data.get("temperature", SPREAD_TEMPERATURE)),
        )

    @classmethod
    def legacy(cls, ridge: Any, cold_weight: float) -> NewUserModel:
        """The rule of models saved before this model: the most probable group's
        popularity, blended with the ridge by ``cold_weight``."""
        w = float(cold_weight) if ridge is not None else 0.0
        return cls(
            weights={"group": 1.0 - w, "ridge": w, "spread": 0.0}, ridge=ridge, membership="hard"
        )
