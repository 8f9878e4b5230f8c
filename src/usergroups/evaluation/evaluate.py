"""Evaluate a recommender (or any scoring function) on a :class:`Split`, in bounded memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._typing import IntVector
from usergroups.errors import ConfigError, DataError
from usergroups.evaluation import metrics as m
from usergroups.evaluation.baselines import Recommender
from usergroups.evaluation.splits import Split

__all__ = ["evaluate_recommender", "evaluate_scores"]

logger = logging.getLogger(__name__)

ScoreFunction = Callable[[IntVector], npt.ArrayLike]


def evaluate_recommender(
    recommender: Recommender,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    batch_size: int = 1024,
    item_vectors: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """Rank every item for each test user of ``split`` and average the metrics.

    The recommender must already be fitted on ``split.train`` (or on
    ``split.train_dataset()``); it is asked for ``score(split.test_users[batch])``.
    See :func:`evaluate_scores` for the metrics and the masking.

    Parameters
    ----------
    recommender : Recommender
        Anything with ``score(user_indices) -> ndarray (n, n_items)``.
    split : Split
        The protocol's split.
    ks : sequence of int
        Cut-offs.
    batch_size : int
        Users scored at once; memory is about ``batch_size × n_items × 8`` bytes a few times.
    item_vectors : array-like of shape (n_items, n_features), optional
        Adds intra-list diversity ``ILD@k``.

    Returns
    -------
    dict
        Metric name → mean over test users; see :func:`evaluate_scores`.

    Examples
    --------
    >>> from usergroups.evaluation import PopularityRecommender, warm_split
    >>> # split = warm_split(dataset)
    >>> # evaluate_recommender(PopularityRecommender().fit(split.train), split)["NDCG@10"]
    """
    users = split.test_users

    def score(rows: IntVector) -> npt.ArrayLike:
        return recommender.score(users[rows])

    return evaluate_scores(score, split, ks, batch_size=batch_size, item_vectors=item_vectors)


def evaluate_scores(
    score: ScoreFunction,
    split: Split,
    ks: Sequence[int] = (10, 20),
    *,
    batch_size: int = 1024,
    item_vectors: npt.ArrayLike | None = None,
    per_user: MutableMapping[str, npt.NDArray[np.float64]] | None = None,
) -> dict[str, float]:
    """Evaluate a scoring function over the test users of ``split``, batch by batch.

    For each batch, ``score(rows)`` receives positions ``rows`` into
    ``split.test_users`` (and ``split.query_texts`` for the cold protocol) and
    returns scores of shape (len(rows), n_items) in the dataset's item order. The
    split's ``exclude`` items (the user's training items; for cold, the query
    review's item) are set to ``-inf`` and the full ranking over all remaining
    items is evaluated, ties towards the lower item index.

    Parameters
    ----------
    score : callable
        ``score(rows: ndarray of int) -> ndarray of shape (len(rows), n_items)``.
    split : Split
    ks : sequence of int
        Cut-offs, e.g. ``(10, 20)``.
    batch_size : int
        Users per batch.
    item_vectors : array-like of shape (n_items, n_features), optional
        Adds ``ILD@k`` (intra-list diversity).
    per_user : dict, optional
        When given, filled with each accuracy metric's values per test user (name →
        ndarray of shape (n_test_users,)), for bootstrap intervals
        (:func:`usergroups.evaluation.metrics.bootstrap_interval`).

    Returns
    -------
    dict
        For every ``k`` in ``ks``: ``HR@k``, ``NDCG@k``, ``Recall@k``,
        ``Precision@k``, ``MAP@k``, ``Coverage@k`` (share of the catalogue in any
        top-k list), ``AvgPop@k`` (mean share of training users who interacted with
        a recommended item) and, with item vectors, ``ILD@k``; then ``MRR`` (full
        ranking) and ``n_users``. Accuracy metrics are means over test users
        (binary relevance).

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 57 lines.
    """
    ks = _check_ks(ks)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")
    n_items = split.n_items
    vectors = _check_item_vectors(item_vectors, n_items)
    popularity = split.item_popularity()
    k_max = max(ks)
    users = split.test_users
    n = len(users)
    sums: dict[str, float] = {}
    parts: dict[str, list[npt.NDArray[np.float64]]] = {}
    recommended = {k: np.zeros(n_items, dtype=bool) for k in ks}

    def add(name: str, values: npt.NDArray[np.float64]) -> None:
        sums[name] = sums.get(name, 0.0) + float(np.nansum(values))
        if per_user is not None and not name.startswith(("AvgPop", "ILD")):
            parts.setdefault(name, []).append(np.asarray(values, dtype=np.float64))

    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n), dtype=np.int64)
        scores = _masked_scores(score(rows), split, users[rows])
        relevant = split.test[users[rows]]
        ranked = m.topk(scores, k_max)
        # masked items (only reached when fewer than k items are left) are not recommended
        ranked = np.where(np.isneginf(np.take_along_axis(scores, ranked, axis=1)), -1, ranked)
        for k in ks:
            top = ranked[:, :k]
            add(f"HR@{k}", m.hit_rate(top, relevant, k))
            add(f"NDCG@{k}", m.ndcg(top, relevant, k))
            add(f"Recall@{k}", m.recall(top, relevant, k))
            add(f"Precision@{k}", m.precision(top, relevant, k))
            add(f"MAP@{k}", m.average_precision(top, relevant, k))
            add(f"AvgPop@{k}", m.average_popularity(top, popularity))
            if vectors is not None:
                add(f"ILD@{k}", m.intra_list_diversity(top, vectors))
            recommended[k] |= m.recommended_items(top, n_items)
        add("MRR", m.reciprocal_rank(scores, relevant))
    result = _means(sums, recommended, ks, n, n_items)
    if per_user is not None:
        per_user.update({name: np.concatenate(v) for name, v in parts.items()})
    result["n_users"] = n
    logger.info(
        "%s split of %r: %s",
        split.protocol,
        split.dataset.name,
        ", ".join(f"{k}={v:.4f}" for k, v in result.items() if k != "n_users"),
    )
    return result


def _check_item_vectors(
    item_vectors: npt.ArrayLike | None, n_items: int
) -> npt.NDArray[np.float64] | None:
    """``item_vectors`` as float64, checked to hold one row per item of the split."""
    if item_vectors is None:
        return None
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != n_items:
        raise DataError(
            f"item_vectors must have shape ({n_items}, n_features), one row per item of "
            f"the split; got {vectors.shape}"
        )
    return vectors


def _means(
    sums: dict[str, float],
    recommended: dict[int, npt.NDArray[np.bool_]],
    ks: tuple[int, ...],
    n: int,
    n_items: int,
) -> dict[str, float]:
    """Each metric's mean over the ``n`` test users (Coverage: the share of the catalogue
    recommended), in report order: per ``k`` the ranking metrics, then ``MRR``."""
    result: dict[str, float] = {}
    for k in ks:
        for name in ("HR", "NDCG", "Recall", "Precision", "MAP", "Coverage", "AvgPop", "ILD"):
            key = f"{name}@{k}"
            if name == "Coverage":
                result[key] = float(recommended[k].sum() / n_items)
            elif key in sums:
                result[key] = sums[key] / n
    result["MRR"] = sums["MRR"] / n
    return result


def _masked_scores(raw: npt.ArrayLike, split: Split, users: IntVector) -> npt.NDArray[np.float64]:
    scores = np.array(raw, dtype=np.float64, copy=True)
    if scores.shape != (len(users), split.n_items):
        raise DataError(
            f"the scorer returned shape {scores.shape}; expected ({len(users)}, {split.n_items}) "
            "= (users in the batch, items of the split's dataset). Map item columns with "
            "split.align_item_scores if the model has its own item vocabulary"
        )
    if np.isnan(scores).any():
        raise DataError(
            "the scorer returned NaN scores; fix the model (masking is done by the evaluator)"
        )
    exclude = sp.csr_matrix(split.exclude[users])
    rows = np.repeat(np.arange(len(users)), np.diff(exclude.indptr))
    scores[rows, exclude.indices] = -np.inf
    return scores


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(ks)
    if not out or any(
        isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1 for k in out
    ):
        raise ConfigError(f"ks must be a non-empty sequence of positive integers; got {ks!r}")
    return tuple(sorted({int(k) for k in out}))
