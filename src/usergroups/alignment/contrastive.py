"""Review ↔ item contrastive pairs and their loss, for ``align.lora_objective="contrastive"``.

BLaIR (Hou et al., 2024, Amazon Reviews 2023) trains the text encoder on pairs of a review
and the item it is about, with the other items of the batch as negatives. Here the item
side is a short *item document* encoded by the same (adapted) encoder: the item's title,
when it has one, followed by up to ``n_reviews`` of the item's **other** training reviews
(never the query review, and only texts the caller passes, i.e. the validation carve's
training texts, so the choices made afterwards on held-out users stay honest).

The loss is the symmetric InfoNCE of the batch's similarity matrix (queries × documents,
cosine divided by a temperature). Two pairs about the same item are both positives of
each other rather than false negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups.errors import DataError

__all__ = ["ContrastivePairs", "info_nce", "make_pairs"]

CHARS_PER_TOKEN = 4
"""Rough characters per token, to cut an item document's reviews before tokenising."""


@dataclass
class ContrastivePairs:
    """Which item each training text is paired with, and the material of item documents.

    Attributes
    ----------
    text_rows : ndarray of shape (n_pairs,)
        Index (into the texts) of each usable query text.
    items : ndarray of shape (n_pairs,)
        The item of each pair: the text's own item, else one of its author's training items.
    reviews_of_item : dict of int to ndarray
        Training texts about each item (candidates for its document).
    titles : list of str
        Title of each item ("" when unknown), indexed by item.
    """

    text_rows: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    reviews_of_item: dict[int, npt.NDArray[np.int64]]
    titles: list[str]

    def __len__(self) -> int:
        return len(self.text_rows)

    def documents(
        self,
        texts: list[str],
        batch: npt.NDArray[np.int64],
        rng: np.random.Generator,
        *,
        n_reviews: int = 3,
        max_chars: int = 512,
    ) -> list[str]:
        """The item document of each pair in ``batch`` (positions into the pairs).

        The title, then up to ``n_reviews`` other reviews of the item drawn at random
        (excluding the pair's own text), each cut to an equal share of ``max_chars``; the
        tokenizer truncates the whole to the model's maximum sequence length.
        """
        docs = []
        share = max(16, max_chars // max(1, n_reviews))
        for p in batch:
            row, item = int(self.text_rows[p]), int(self.items[p])
            others = self.reviews_of_item.get(item, np.zeros(0, np.int64))
            others = others[others != row]
            if len(others) > n_reviews:
                others = rng.choice(others, size=n_reviews, replace=False)
            parts = [self.titles[item]] if self.titles[item] else []
            parts += [texts[int(j)][:share] for j in others]
            docs.append(" | ".join(parts))
        return docs


def make_pairs(
    item_of_text: npt.ArrayLike,
    user_of_text: npt.ArrayLike,
    targets: sp.spmatrix,
    titles: list[str] | None,
    rng: np.random.Generator,
    *,
    n_reviews: int = 3,
) -> ContrastivePairs:
    """Pair each training text with an item that has a non-empty document.

    Parameters
    ----------
    item_of_text : array-like of shape (n_texts,)
        Item index of each text, -1 when unknown.
    user_of_text : array-like of shape (n_texts,)
        Row of ``targets`` of each text's author.
    targets : sparse matrix of shape (n_users, n_items)
        Training interactions; a text without an item is paired with one of its author's
        items, drawn once with ``rng``.
    titles : list of str, optional
        Title of each item ("" or None for none).
    n_reviews : int
        How many other reviews an item document may hold; 0 means titles only.

    Raises
    ------
    DataError
        When no text can be paired (no item has a title nor two reviews).
    """
    items = np.asarray(item_of_text, dtype=np.int64).copy()
    users = np.asarray(user_of_text, dtype=np.int64)
    x = sp.csr_matrix(targets)
    n_items = x.shape[1]
    for t in np.flatnonzero(items < 0):
        row = x.indices[x.indptr[users[t]] : x.indptr[users[t] + 1]]
        if len(row):
            items[t] = int(rng.choice(row))
    names = [str(t) if t else "" for t in (titles or [""] * n_items)]
    if len(names) != n_items:
        raise DataError(f"titles has {len(names)} entries for {n_items} items; pass one per item")
    about = np.asarray(item_of_text, dtype=np.int64)
    known = np.flatnonzero(about >= 0)
    order = known[np.argsort(about[known], kind="stable")]
    splits = np.flatnonzero(np.diff(about[order])) + 1
    reviews = {int(about[g[0]]): g for g in np.split(order, splits) if len(g)}
    n_reviews_of = np.zeros(n_items, dtype=np.int64)
    for i, g in reviews.items():
        n_reviews_of[i] = len(g)
    has_title = np.array([bool(s) for s in names], dtype=bool)
    ok = items >= 0
    own = ok & (items == about)
    safe = np.where(ok, items, 0)
    # the pair's own text never enters its document, so it must have another source
    others = n_reviews_of[safe] - own.astype(np.int64) if n_reviews > 0 else 0
    ok &= has_title[safe] | (others > 0)
    rows = np.flatnonzero(ok).astype(np.int64)
    if len(rows) == 0:
        raise DataError(
            "contrastive LoRA: no text can be paired with an item document (no item has a "
            "title or a second training review); use align.lora_objective='head'"
        )
    return ContrastivePairs(rows, items[rows], reviews, names)


def info_nce(queries: Any, documents: Any, items: Any, temperature: float = 0.05) -> Any:
    """Symmetric InfoNCE with in-batch negatives; same-item pairs count as positives.

    Parameters
    ----------
    queries, documents : torch.Tensor of shape (batch_size, dim)
        Unit-norm embeddings of the reviews and of the item documents.
    items : torch.Tensor of shape (batch_size,)
        Item index of each pair.
    temperature : float

    Returns
    -------
    torch.Tensor
        The scalar loss: the mean of review → item and item → review cross-entropies, each
        ``-log(sum over positives / sum over all)``.
    """
    import torch

    logits = queries @ documents.T / temperature
    positive = items[:, None] == items[None, :]
    neg_inf = torch.finfo(logits.dtype).min

    def one_way(z: Any) -> Any:
        pos = torch.logsumexp(z.masked_fill(~positive, neg_inf), dim=1)
        return (torch.logsumexp(z, dim=1) - pos).mean()

    return 0.5 * (one_way(logits) + one_way(logits.T))
