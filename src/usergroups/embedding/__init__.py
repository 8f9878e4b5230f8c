"""Texts in, float32 unit vectors out: encoders, text cleaning and the embedding cache.

Importing this package is cheap: torch and sentence-transformers load only when a
:class:`SentenceTransformerEncoder` first embeds something.

Examples
--------
>>> from usergroups.embedding import HashingEncoder, clean_text
>>> HashingEncoder(dim=32).encode([clean_text("<p>Great strings!</p>"), ""]).shape
(2, 32)
"""

from __future__ import annotations

from usergroups.embedding.base import Encoder, is_blank, l2_normalize_rows
from usergroups.embedding.cache import CachedEncoder, EmbeddingCache, text_key
from usergroups.embedding.factory import (
    CACHE_ENV,
    default_cache_dir,
    encoder_from_name,
    make_encoder,
)
from usergroups.embedding.hashing import HashingEncoder, tokenize
from usergroups.embedding.sentence_transformer import (
    SentenceTransformerEncoder,
    model_fingerprint,
    resolve_model,
)
from usergroups.embedding.text import CLEAN_VERSION, CleaningEncoder, clean_text, clean_texts

__all__ = [
    "CACHE_ENV",
    "CLEAN_VERSION",
    "CachedEncoder",
    "CleaningEncoder",
    "EmbeddingCache",
    "Encoder",
    "HashingEncoder",
    "SentenceTransformerEncoder",
    "clean_text",
    "clean_texts",
    "default_cache_dir",
    "encoder_from_name",
    "is_blank",
    "l2_normalize_rows",
    "make_encoder",
    "model_fingerprint",
    "resolve_model",
    "text_key",
    "tokenize",
]
