"""Train/test splits for the evaluation protocols of ``DESIGN.md``.

All protocols are implicit feedback: every interaction is a positive. Duplicate
(user, item) interactions are already collapsed to the latest by the data model
(:func:`usergroups.data.build_dataset` with ``duplicates="latest"``; a
:class:`~usergroups.data.Dataset` never holds duplicates).

"Order by time" always means: by ``timestamp``, then by row order of
``dataset.interactions`` (which is file order), with missing timestamps (NaN)
ordered before every known one. Matrices are indexed by the dataset's own
vocabularies (``dataset.user_ids``, ``dataset.item_ids``), so every item of the
dataset is in the catalogue, including items seen only in test.

- :func:`warm_split`: leave-last-out for users with at least 3 interactions.
- :func:`cold_split`: 20 % of users held out entirely, each known by the text of
  their first review.
- :func:`random_split`, :func:`temporal_split`: ratio splits (per user or global).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from usergroups._typing import IntVector
from usergroups.data.model import Dataset
from usergroups.errors import ConfigError, DataError

__all__ = [
    "Split",
    "SplitProtocol",
    "cold_split",
    "first_text_per_user",
    "last_row_per_user",
    "random_split",
    "temporal_split",
    "time_key",
    "warm_split",
]

logger = logging.getLogger(__name__)

SplitProtocol = Literal["warm", "cold", "random", "temporal"]
Scope = Literal["user", "global"]
BoolVector = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class Split:
    """A train/test split of a :class:`~usergroups.data.Dataset`.

    Build one with :func:`warm_split`, :func:`cold_split`, :func:`random_split` or
    :func:`temporal_split`; do not construct it by hand.

    Attributes
    ----------
    dataset : Dataset
        The full dataset; its vocabularies index every matrix below.
    protocol : {"warm", "cold", "random", "temporal"}
        How the split was made.
    train : csr_matrix of shape (n_users, n_items), float32
        1 for every training interaction. Held-out users of the cold protocol
        have empty rows.
    test : csr_matrix of shape (n_users, n_items), float32
        1 for every test target; only rows of ``test_users`` are non-empty.
    test_users : ndarray of shape (n_test_users,), int64
        Sorted indices (into ``dataset.user_ids``) of the users to evaluate; each
        has at least one target.
    exclude : csr_matrix of shape (n_users, n_items), float32
        Items that are known for a user and are therefore masked (never
        recommended) at evaluation: the training items for warm, random and
        temporal splits; the item of the query review for cold.
    query_texts : ndarray of shape (n_test_users,), object, or None
        Cold protocol only: the text each held-out user is known by, aligned with
        ``test_users``.
    train_rows : ndarray of shape (n_interactions,), bool
        Which rows of ``dataset.interactions`` are training rows.
    test_rows : ndarray of shape (n_interactions,), bool
        Which rows are test targets.
    params : dict
        The arguments the split was made with (for reports).
    """

    dataset: Dataset
    protocol: SplitProtocol
    train: sp.csr_matrix
    test: sp.csr_matrix
    test_users: IntVector
    exclude: sp.csr_matrix
    train_rows: BoolVector
    test_rows: BoolVector
    query_texts: npt.NDArray[np.object_] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    @property
    def n_test_users(self) -> int:
        return len(self.test_users)

    def targets(self) -> list[IntVector]:
        """Item indices of each test user's targets, aligned with ``test_users``."""
        t = self.test
        return [t.indices[t.indptr[u] : t.indptr[u + 1]].astype(np.int64) for u in self.test_users]

    def test_matrix(self) -> sp.csr_matrix:
        """Targets as csr of shape (n_test_users, n_items), rows in ``test_users`` order."""
        return sp.csr_matrix(self.test[self.test_users])

    def item_popularity(self) -> npt.NDArray[np.float64]:
        """Share of training users (those with a training row) who interacted with each item.

        Returns
        -------
        ndarray of shape (n_items,), in [0, 1]
        """
        n_train_users = int((np.diff(self.train.indptr) > 0).sum())
        counts = np.asarray((self.train > 0).sum(axis=0)).ravel().astype(np.float64)
        return counts / max(n_train_users, 1)

    def train_dataset(self, *, drop_test_texts: bool = True) -> Dataset:
        """A :class:`~usergroups.data.Dataset` of the training part, to fit a pipeline on.

        Holds the training interactions, the texts of users that are not held out
        and the item and user tables. Its vocabularies are its own (items only seen
        in test are absent unless the dataset has item metadata); map scores back
        with :meth:`align_item_scores`.

        Parameters
        ----------
        drop_test_texts : bool
            Drop texts written about a test target (same user and item): such a
            review describes the very item to be predicted and would leak it. Texts
            without an item (bios, comments) are kept. Held-out users of the cold
            protocol lose all their texts either way.
        """
        ds = self.dataset
        inter = ds.interactions[self.train_rows].reset_index(drop=True)
        texts = ds.texts
        held_out = self._held_out_users()
        if len(held_out):
            texts = texts[~texts["user_id"].isin(held_out)]
        if drop_test_texts and self.test_rows.any() and len(texts):
            test = ds.interactions.loc[self.test_rows, ["user_id", "item_id"]]
            keys = set(zip(test["user_id"], test["item_id"], strict=True))
            leak = np.fromiter(
                ((u, i) in keys for u, i in zip(texts["user_id"], texts["item_id"], strict=True)),
                dtype=bool,
                count=len(texts),
            )
            if leak.any():
                logger.info(
                    "train_dataset: dropped %d text(s) written about test targets", leak.sum()
                )
            texts = texts[~leak]
        users = ds.users
        if users is not None and len(held_out):
            users = users[~users["user_id"].isin(held_out)].reset_index(drop=True)
        return Dataset(
            interactions=inter,
            texts=texts.reset_index(drop=True),
            items=ds.items,
            users=users,
            name=f"{ds.name}[{self.protocol} train]",
        )

    def align_item_scores(
        self, scores: npt.ArrayLike, item_ids: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """Re-index scores over some item vocabulary onto this split's catalogue.

        Parameters
        ----------
        scores : array-like of shape (n, len(item_ids))
            Scores from a model fitted on :meth:`train_dataset` (its own item order).
        item_ids : array-like of shape (len(item_ids),)
            The external ids of the score columns.

        Returns
        -------
        ndarray of shape (n, n_items)
            Columns in ``dataset.item_ids`` order; items the model does not know get
            ``-inf`` (never recommended).
        """
        s = np.asarray(scores, dtype=np.float64)
        ids = np.asarray(item_ids, dtype=object)
        if s.ndim != 2 or s.shape[1] != len(ids):
            raise DataError(
                f"scores must have shape (n, {len(ids)}) to match item_ids; got {s.shape}"
            )
        cols = self.dataset.item_ids.index(ids, what="item_id")
        out = np.full((s.shape[0], self.n_items), -np.inf)
        out[:, cols] = s
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for reports: users, items, training and test interactions, test users."""
        return {
            "protocol": self.protocol,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_train": int(self.train.nnz),
            "n_test": int(self.test.nnz),
            "n_test_users": self.n_test_users,
            **self.params,
        }

    def _held_out_users(self) -> list[str]:
        if self.protocol != "cold":
            return []
        return list(self.dataset.user_ids.ids[self.test_users])

    def __repr__(self) -> str:
        return (
            f"Split({self.protocol!r}, {self.dataset.name!r}, users={self.n_users}, "
            f"items={self.n_items}, train={self.train.nnz}, test={self.test.nnz}, "
            f"test_users={self.n_test_users})"
        )


def warm_split(dataset: Dataset, *, min_interactions: int = 3) -> Split:
    """Leave-last-out split: each eligible user's last interaction is their test item.

    Users with at least ``min_interactions`` interactions are evaluated; their
    last interaction by time (ties: file order) is the test item and the rest is
    training. Users with fewer interactions are not evaluated but keep all their
    interactions in training. Every item of the dataset stays in the catalogue.

    Parameters
    ----------
    dataset : Dataset
        Duplicates are already collapsed to the latest by the data model.
    min_interactions : int
        Minimum number of interactions for a user to be evaluated (``DESIGN.md``: 3).

    Returns
    -------
    Split
        ``protocol="warm"``; ``exclude`` equals ``train``.

    Examples
    --------
    >>> import pandas as pd
    >>> from usergroups.data import build_dataset
    >>> ds = build_dataset(pd.DataFrame({
    ...     "user_id": ["a", "a", "a", "b"], "item_id": ["x", "y", "z", "x"],
    ...     "timestamp": [3, 1, 2, 1]}))
    >>> split = warm_split(ds)
    >>> [ds.item_ids.ids[t].tolist() for t in split.targets()]
    [['x']]
    """
    if min_interactions < 2:
        raise ConfigError(
            f"min_interactions must be >= 2 so that a test user keeps a training item; "
            f"got {min_interactions}"
        )
    users, items, order_key = _interaction_arrays(dataset)
    n = len(users)
    counts = np.bincount(users, minlength=dataset.n_users)
    last_rows = np.flatnonzero(last_row_per_user(users, order_key))
    test_rows_idx = last_rows[counts[users[last_rows]] >= min_interactions]
    test_rows = np.zeros(n, dtype=bool)
    test_rows[test_rows_idx] = True
    split = _build_split(dataset, "warm", users, items, ~test_rows, test_rows, min_train=1)
    return _with_params(split, {"min_interactions": min_interactions})


def cold_split(
    dataset: Dataset,
    *,
    test_fraction: float = 0.2,
    random_state: int | np.random.Generator | None = 0,
    min_texts: int = 2,
) -> Split:
    """Hold out a seeded share of users entirely; each is known by the text of their first review.

    Eligible users have at least ``min_texts`` texts and at least one interaction
    besides the item of their first text. A random ``test_fraction`` of them
    (rounded) is held out: none of their interactions or texts is in training,
    their query is the text of their first review by time (ties: row order of
    ``dataset.texts``), and their targets are the items of all their other
    interactions. The query review's own item is masked at evaluation.

    Parameters
    ----------
    dataset : Dataset
        Needs texts.
    test_fraction : float
        Share of eligible users held out, in (0, 1).
    random_state : int, Generator or None
        Seed of the user sample.
    min_texts : int
        Minimum number of texts for a user to be eligible (``DESIGN.md``: 2).

    Returns
    -------
    Split
        ``protocol="cold"`` with ``query_texts``.

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 56 lines.
    """
    _check_fraction(test_fraction)
    texts = dataset.texts
    if len(texts) == 0:
        raise DataError(
            f"cold_split needs user texts; dataset {dataset.name!r} has none. Use warm_split "
            "or load a dataset with reviews"
        )
    first_text_row = first_text_per_user(dataset)
    first_item = _first_review_items(dataset, first_text_row)
    users, items, _ = _interaction_arrays(dataset)
    is_query_item = items == first_item[users]
    eligible = _cold_eligible(dataset, users, is_query_item, min_texts)
    n_test = round(test_fraction * len(eligible))
    if n_test == 0:
        raise DataError(
            f"cold_split found {len(eligible)} eligible user(s) (>= {min_texts} texts and an "
            f"interaction besides the first review's item); test_fraction={test_fraction} "
            "holds out none. Use a dataset with more reviewers or a larger test_fraction"
        )
    rng = np.random.default_rng(random_state)
    test_users = np.sort(rng.choice(eligible, size=n_test, replace=False)).astype(np.int64)
    held = np.zeros(dataset.n_users, dtype=bool)
    held[test_users] = True
    split = _build_split(
        dataset,
        "cold",
        users,
        items,
        ~held[users],
        held[users] & ~is_query_item,
        min_train=0,
        exclude=_query_item_mask(dataset, test_users, first_item[test_users]),
        query_texts=texts["text"].to_numpy(dtype=object)[first_text_row[test_users]],
    )
    logger.info(
        "cold split: %d of %d eligible users held out (%d targets)",
        n_test,
        len(eligible),
        split.test.nnz,
    )
    return _with_params(
        split,
        {
            "test_fraction": test_fraction,
            "random_state": random_state if isinstance(random_state, int) else None,
            "min_texts": min_texts,
            "n_eligible_users": len(eligible),
        },
    )


def _first_review_items(dataset: Dataset, first_text_row: IntVector) -> IntVector:
    """Item of each user's first review; -1 if it has none, the user has no text, or the
    item is not in the dataset. Shape (n_users,)."""
    first_item = np.full(dataset.n_users, -1, dtype=np.int64)
    has_first = first_text_row >= 0
    first_item_ids = dataset.texts["item_id"].to_numpy(dtype=object)[first_text_row[has_first]]
    first_item[has_first] = [_item_index_or_missing(dataset, i) for i in first_item_ids]
    return first_item


def _cold_eligible(
    dataset: Dataset, users: IntVector, is_query_item: BoolVector, min_texts: int
) -> IntVector:
    """Users with at least ``min_texts`` texts and an interaction besides their first
    review's item (``is_query_item``, per interaction): those the cold protocol can hold out."""
    n_users = dataset.n_users
    text_users = dataset.user_ids.index(dataset.texts["user_id"], what="user_id")
    n_texts = np.bincount(text_users, minlength=n_users)
    n_targets = np.bincount(users[~is_query_item], minlength=n_users)
    return np.flatnonzero((n_texts >= min_texts) & (n_targets >= 1))


def _query_item_mask(
    dataset: Dataset, test_users: IntVector, query_items: IntVector
) -> sp.csr_matrix:
    """The cold split's ``exclude``: each held-out user's query review item (when known)."""
    known = query_items >= 0
    return sp.csr_matrix(
        (
            np.ones(int(known.sum()), dtype=np.float32),
            (test_users[known], query_items[known]),
        ),
        shape=(dataset.n_users, dataset.n_items),
    )


def random_split(
    dataset: Dataset,
    test_fraction: float = 0.2,
    random_state: int | np.random.Generator | None = 0,
    *,
    scope: Scope = "user",
) -> Split:
    """Ratio split with interactions drawn at random.

    ``scope="user"`` (the RecBole convention): each user's interactions are
    shuffled and ``floor(test_fraction * n_u)`` of them go to test.
    ``scope="global"``: ``round(test_fraction * n)`` interactions drawn from all.
    Users with at least one test and one training interaction are evaluated; the
    test interactions of other users are left out of both sides.

    Parameters
    ----------
    dataset : Dataset
    test_fraction : float
        In (0, 1).
    random_state : int, Generator or None
        Seed.
    scope : {"user", "global"}

    Returns
    -------
    Split
        ``protocol="random"``; ``exclude`` equals ``train``.
    """
    _check_fraction(test_fraction)
    _check_scope(scope)
    users, items, _ = _interaction_arrays(dataset)
    rng = np.random.default_rng(random_state)
    key = rng.random(len(users))
    test_rows = _ratio_test_rows(users, key, test_fraction, scope, dataset.n_users)
    split = _build_split(dataset, "random", users, items, ~test_rows, test_rows, min_train=1)
    return _with_params(
        split,
        {
            "test_fraction": test_fraction,
            "random_state": random_state if isinstance(random_state, int) else None,
            "scope": scope,
        },
    )


def temporal_split(dataset: Dataset, test_fraction: float = 0.2, *, scope: Scope = "user") -> Split:
    """Ratio split by time: the latest interactions go to test.

    ``scope="user"``: each user's latest ``floor(test_fraction * n_u)``
    interactions (by time, ties: file order). ``scope="global"``: the latest
    ``round(test_fraction * n)`` interactions of the whole log, i.e. one cut-off
    time for everyone, so no training interaction is later than a test one. Users
    with at least one test and one training interaction are evaluated.

    Parameters
    ----------
    dataset : Dataset
    test_fraction : float
        In (0, 1).
    scope : {"user", "global"}

    Returns
    -------
    Split
        ``protocol="temporal"``; ``exclude`` equals ``train``.
    """
    _check_fraction(test_fraction)
    _check_scope(scope)
    users, items, order_key = _interaction_arrays(dataset)
    n = len(users)
    # rank by (time, row): a float key whose order is that of the lexsort
    rank = np.empty(n, dtype=np.float64)
    rank[np.lexsort((np.arange(n), order_key))] = np.arange(n)
    test_rows = _ratio_test_rows(users, rank, test_fraction, scope, dataset.n_users)
    split = _build_split(dataset, "temporal", users, items, ~test_rows, test_rows, min_train=1)
    return _with_params(split, {"test_fraction": test_fraction, "scope": scope})


# -- internals ----------------------------------------------------------------


def last_row_per_user(users: IntVector, time_key: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Mask of each user's last row by time, ties broken by row order (the warm rule).

    Parameters
    ----------
    users : ndarray of shape (n_rows,)
    time_key : ndarray of shape (n_rows,)
        Timestamps; missing ones as ``-inf`` (see :func:`time_key`).

    Returns
    -------
    ndarray of shape (n_rows,), bool: True on exactly one row per user present.
    """
    n = len(users)
    order = np.lexsort((np.arange(n), time_key, users))
    sorted_users = users[order]
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = sorted_users[:-1] != sorted_users[1:]
    mask = np.zeros(n, dtype=bool)
    mask[order[is_last]] = True
    return mask


def first_text_per_user(dataset: Dataset) -> IntVector:
    """Row in ``dataset.texts`` of each user's first text by time (ties: row order); -1
    for users without texts. Shape (n_users,). The cold protocol's query rule."""
    texts = dataset.texts
    first = np.full(dataset.n_users, -1, dtype=np.int64)
    if len(texts) == 0:
        return first
    text_users = dataset.user_ids.index(texts["user_id"], what="user_id")
    text_time = time_key(texts["timestamp"])
    text_order = np.lexsort((np.arange(len(texts)), text_time, text_users))
    sorted_users = text_users[text_order]
    is_first = np.ones(len(texts), dtype=bool)
    is_first[1:] = sorted_users[1:] != sorted_users[:-1]
    first[sorted_users[is_first]] = text_order[is_first]
    return first


def time_key(timestamps: pd.Series) -> npt.NDArray[np.float64]:
    """Timestamps as float64 sort keys; missing ones sort first (``-inf``)."""
    return _time_key(timestamps)


def _time_key(timestamps: pd.Series) -> npt.NDArray[np.float64]:
    ts = timestamps.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(ts), -np.inf, ts)


def _item_index_or_missing(dataset: Dataset, item_id: object) -> int:
    if item_id is None:
        return -1
    index = dataset.item_ids.get(str(item_id))
    return -1 if index is None else index


def _interaction_arrays(
    dataset: Dataset,
) -> tuple[IntVector, IntVector, npt.NDArray[np.float64]]:
    inter = dataset.interactions
    if len(inter) == 0:
        raise DataError(
            f"dataset {dataset.name!r} has no interactions; a split needs an interaction log"
        )
    users = dataset.user_ids.index(inter["user_id"], what="user_id")
    items = dataset.item_ids.index(inter["item_id"], what="item_id")
    return users, items, _time_key(inter["timestamp"])


def _ratio_test_rows(
    users: IntVector,
    key: npt.NDArray[np.float64],
    test_fraction: float,
    scope: Scope,
    n_users: int,
) -> BoolVector:
    """Test rows = the rows with the largest ``key`` (per user or overall)."""
    n = len(users)
    test_rows = np.zeros(n, dtype=bool)
    if scope == "global":
        n_test = round(test_fraction * n)
        test_rows[np.argsort(key, kind="stable")[n - n_test :]] = True
        return test_rows
    order = np.lexsort((key, users))
    sorted_users = users[order]
    counts = np.bincount(users, minlength=n_users)
    ends = np.cumsum(counts)
    from_end = ends[sorted_users] - 1 - np.arange(n)  # 0 for each user's last row
    # the epsilon keeps e.g. 0.29 * 100 = 28.999999999999996 at 29
    n_test_u = np.floor(test_fraction * counts + 1e-9).astype(np.int64)
    test_rows[order[from_end < n_test_u[sorted_users]]] = True
    return test_rows


def _build_split(
    dataset: Dataset,
    protocol: SplitProtocol,
    users: IntVector,
    items: IntVector,
    train_rows: BoolVector,
    test_rows: BoolVector,
    *,
    min_train: int,
    exclude: sp.csr_matrix | None = None,
    query_texts: npt.NDArray[np.object_] | None = None,
) -> Split:
    shape = (dataset.n_users, dataset.n_items)
    train = _binary_csr(users[train_rows], items[train_rows], shape)
    n_train = np.diff(train.indptr)
    n_test = np.bincount(users[test_rows], minlength=dataset.n_users)
    evaluated = (n_test > 0) & (n_train >= min_train)
    test_users = np.flatnonzero(evaluated).astype(np.int64)
    # test rows of users who cannot be evaluated (no training history) leave both sides
    test_rows = test_rows & evaluated[users]
    test = _binary_csr(users[test_rows], items[test_rows], shape)
    if len(test_users) == 0:
        raise DataError(
            f"the {protocol} split of {dataset.name!r} has no test users; the dataset is too "
            "small or too sparse for this protocol (check min_interactions / test_fraction)"
        )
    if query_texts is not None and not np.array_equal(test_users, np.flatnonzero(n_test > 0)):
        raise DataError("internal: cold test users and query texts are misaligned")
    return Split(
        dataset=dataset,
        protocol=protocol,
        train=train,
        test=test,
        test_users=test_users,
        exclude=train if exclude is None else exclude,
        train_rows=np.asarray(train_rows, dtype=bool),
        test_rows=np.asarray(test_rows, dtype=bool),
        query_texts=query_texts,
    )


def _binary_csr(rows: IntVector, cols: IntVector, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def _with_params(split: Split, params: dict[str, Any]) -> Split:
    split.params.update(params)
    return split


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1); got {test_fraction}")


def _check_scope(scope: str) -> None:
    if scope not in ("user", "global"):
        raise ConfigError(f"scope={scope!r} is not one of 'user', 'global'")
