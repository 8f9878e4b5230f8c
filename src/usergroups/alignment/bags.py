"""Each user's bag of text vectors: the input the aligner pools and projects.

A user's bag is their texts or, for users without texts, the text vectors of the items
they interacted with (e.g. MovieLens titles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._lazy import lazy_module
from usergroups.alignment.head import TextBags

if TYPE_CHECKING:
    import scipy.sparse as sp

    from usergroups.data import Dataset
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = ["make_bags"]


def make_bags(
    dataset: Dataset,
    text_vectors: npt.NDArray[Any],
    item_vectors: npt.NDArray[Any] | None,
    x: sp.csr_matrix,
    text_keep: npt.NDArray[np.bool_] | None = None,
) -> TextBags:
    """Each user's bag: their (kept) texts, or, for users without texts, the text vectors
    of the items in their row of ``x`` (e.g. MovieLens titles)."""
    n_users = x.shape[0]
    texts = dataset.texts
    n_texts = len(texts)
    user_of_text = (
        dataset.user_ids.index(texts["user_id"]) if n_texts else np.zeros(0, dtype=np.int64)
    )
    keep = np.ones(n_texts, dtype=bool) if text_keep is None else text_keep
    t_members = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (user_of_text[keep], np.flatnonzero(keep))),
        shape=(n_users, n_texts),
    )
    has_text = np.zeros(n_users, dtype=bool)
    has_text[user_of_text] = True  # users with texts use only texts, even if all were carved
    vectors = np.asarray(text_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(n_texts, 0)
    if item_vectors is None or not np.any(item_vectors):
        return TextBags(t_members, vectors)
    i_members = sp.csr_matrix(sp.diags((~has_text).astype(np.float32)) @ sp.csr_matrix(x))
    i_members.data[:] = 1.0
    i_members.eliminate_zeros()
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.shape[1] != item_vectors.shape[1]:
        vectors = np.zeros((n_texts, item_vectors.shape[1]), np.float32)
    return TextBags(sp.hstack([t_members, i_members]).tocsr(), np.vstack([vectors, item_vectors]))
