"""A cheap, deterministic stand-in encoder: feature hashing onto random directions."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from usergroups._typing import FloatMatrix
from usergroups.embedding.base import check_texts, l2_normalize_rows
from usergroups.errors import ConfigError

__all__ = ["HashingEncoder", "tokenize"]

# Han (with extension A and compatibility ideographs), kana and Hangul syllables: scripts
# written without spaces between words, tokenised as characters plus character bigrams.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RE = re.compile(rf"[{_CJK}]")
_SEP = "\x1f"  # ASCII unit separator: never part of a token
_BATCH_RE = re.compile(rf"\x1f|[{_CJK}]+|[^\W_{_CJK}]+")
_ASCII_BATCH_RE = re.compile(r"\x1f|[a-z0-9]+")  # the same tokens on ASCII text, faster

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TOKEN_CHUNK = 4096  # bounds the (tokens, dim) uint64 scratch arrays to a few MiB


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; CJK runs become single characters plus bigrams.

    Examples
    --------
    >>> tokenize("Great Guitar-strings, 10/10!")
    ['great', 'guitar', 'strings', '10', '10']
    >>> tokenize("音色很好")
    ['音', '色', '很', '好', '音色', '色很', '很好']
    """
    return _expand_cjk(_TOKEN_RE.findall(text.lower()))


def _expand_cjk(runs: list[str]) -> list[str]:
    tokens: list[str] = []
    for run in runs:
        if _CJK_RE.match(run):
            tokens.extend(run)
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            tokens.append(run)
    return tokens


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # a strong 64-bit mixer (Steele et al.); numpy wraps uint64 overflow silently
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _directions(hashes: npt.NDArray[np.uint64], dim: int) -> FloatMatrix:
    """Unit Gaussian directions, one per token hash, computed without per-token RNGs.

    Returns an ndarray of shape (len(hashes), dim), float32.
    """
    n_pairs = (dim + 1) // 2
    counters = np.arange(1, n_pairs + 1, dtype=np.uint64) * _GOLDEN
    bits = _splitmix64(hashes[:, None] ^ counters[None, :])
    # two 24-bit uniforms in (0, 1] per 64 random bits; Box-Muller makes them Gaussian
    scale = np.float32(1.0 / 2**24)
    u1 = ((bits >> np.uint64(40)).astype(np.float32) + 1) * scale
    u2 = ((bits & np.uint64(0xFFFFFF)).astype(np.float32) + 1) * scale
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    angle = np.float32(2.0 * np.pi) * u2
    out = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :dim]
    return l2_normalize_rows(np.ascontiguousarray(out, dtype=np.float32))


class HashingEncoder:
    """A deterministic bag-of-words encoder needing only numpy: for tests and no-torch users.

    Each token (lower-cased word; for Chinese, Japanese and Korean, every character and
    character bigram) is hashed with BLAKE2b, keyed by ``random_state``, to a fixed
    random unit Gaussian direction. A text's vector is the sum of its tokens' directions
    weighted by ``1 + log(count)``, L2-normalised. Texts sharing words therefore have
    high cosine similarity; unrelated texts are near-orthogonal (about ``1/sqrt(dim)``).
    It knows nothing about meaning ("guitar" and "bass" are as far apart as any pair).

    Parameters
    ----------
    dim : int, default 256
        Length of the vectors.
    random_state : int, default 0
        Seeds the token directions; the same seed gives the same vectors in every process
        and on every machine (BLAKE2b, not Python's salted ``hash``).

    Attributes
    ----------
    name : str
        ``"hashing:<dim>@seed<random_state>/v1"``.

    Notes
    -----
    A blank text, or one without any word character (``"!!!"``), gives a zero row.
    ``show_progress`` is accepted and ignored: 10,000 short texts take a fraction of a
    second.

    Examples
    --------
    >>> enc = HashingEncoder(dim=64)
    >>> X = enc.encode(["new guitar strings", "guitar strings, new!", "blender broke"])
    >>> X.shape
    (3, 64)
    >>> bool(X[0] @ X[1] > 0.99), bool(abs(X[0] @ X[2]) < 0.5)
    (True, True)
    """

    def __init__(self, dim: int = 256, *, random_state: int = 0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
            raise ConfigError(f"HashingEncoder dim must be a positive int, got {dim!r}")
        if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
            raise ConfigError(f"random_state must be an int, got {random_state!r}")
        self.dim = int(dim)
        self.random_state = int(random_state)
        self._key = str(self.random_state).encode()[:64]

    @property
    def name(self) -> str:
        """``"hashing:<dim>@seed<random_state>/v1"``."""
        return f"hashing:{self.dim}@seed{self.random_state}/v1"

    def _hash(self, token: str) -> int:
        digest = hashlib.blake2b(
            token.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key
        ).digest()
        return int.from_bytes(digest, "little")

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``; see :meth:`Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Unit rows; zero rows for texts without tokens.
        """
        from scipy import sparse

        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # one regex pass over all texts joined by a separator instead of
        # one per text; the separator tokens mark where each text ends
        joined = _SEP.join(t.replace(_SEP, " ") if _SEP in t else t for t in texts).lower()
        if joined.isascii():
            tokens = _ASCII_BATCH_RE.findall(joined)
        else:
            tokens = _BATCH_RE.findall(joined)
            if _CJK_RE.search(joined):
                tokens = _expand_cjk(tokens)
        token_array = np.array(tokens, dtype=object)
        is_sep = token_array == _SEP
        rows = np.cumsum(is_sep)[~is_sep]
        words = token_array[~is_sep].tolist()
        if not words:
            return out
        vocab = {token: i for i, token in enumerate(dict.fromkeys(words))}
        cols = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
        # duplicates (row, col) are summed into term counts
        tf = sparse.csr_matrix(
            (np.ones(len(words), dtype=np.float32), (rows, cols)),
            shape=(len(texts), len(vocab)),
        )
        tf.sum_duplicates()
        tf.data = 1.0 + np.log(tf.data)  # sublinear tf: a repeated word adds less and less
        tf = tf.tocsc()  # column blocks below are cheap to slice from CSC
        hashes = np.fromiter((self._hash(t) for t in vocab), dtype=np.uint64, count=len(vocab))
        for start in range(0, len(vocab), _TOKEN_CHUNK):
            stop = min(start + _TOKEN_CHUNK, len(vocab))
            out += np.asarray(tf[:, start:stop] @ _directions(hashes[start:stop], self.dim))
        return l2_normalize_rows(out)

    def __repr__(self) -> str:
        return f"HashingEncoder(dim={self.dim}, random_state={self.random_state})"
