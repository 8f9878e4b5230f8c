"""An on-disk embedding cache keyed by (encoder name, SHA-256 of the exact text).

Layout, one folder per encoder name under the cache directory::

    <cache_dir>/<sanitised encoder name>-<hash>/
        meta.json                 {"name": ..., "dim": ..., "format": 1}, for people
        keys-<shard id>.npy       uint8 (n, 32): SHA-256 digests of the texts
        vecs-<shard id>.npy       float32 (n, dim): their vectors, same order

Shards are append-only and never rewritten. Each call that embeds something writes one
new shard with a unique id (time, process id, random suffix), each file through a
temporary name and an atomic rename, vectors first and keys last: a reader that sees a
keys file can read its vectors, and temporary files (``.keys-…tmp``) are never read. So
several processes can fill the same cache at once without locks; at worst two of them
embed the same text and both keep it. A shard that cannot be read (truncated,
overwritten, wrong shape) is renamed ``corrupt-…`` with a warning and its texts are
embedded again. Vectors stay on disk (memory-mapped) and only the digest index lives in
memory: about 130 bytes per cached text.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._atomic import atomic_path, atomic_write_bytes
from usergroups._typing import FloatMatrix
from usergroups.embedding.base import Encoder, check_encoded, check_texts, is_blank
from usergroups.errors import ConfigError

__all__ = ["CachedEncoder", "EmbeddingCache", "text_key"]

logger = logging.getLogger(__name__)

KEY_BYTES = 32
_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NORM_TOLERANCE = 1e-3
MMAP_MIN_BYTES = 1 << 20
"""Vector files at least this large are memory-mapped rather than read."""
SMALL_SHARD_ROWS = 4096
MAX_SMALL_SHARDS = 32
"""More shards than this under SMALL_SHARD_ROWS rows are merged into one."""


def text_key(text: str) -> bytes:
    """The cache key of a text: the 32-byte SHA-256 digest of its UTF-8 bytes.

    Examples
    --------
    >>> len(text_key("great strings"))
    32
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _folder_name(name: str) -> str:
    # readable prefix for people, hash suffix so names that sanitise alike stay apart
    readable = _UNSAFE.sub("_", name).strip("._")[:80] or "encoder"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def _new_shard_id() -> str:
    # sorts by creation time; pid and randomness keep concurrent writers apart
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"


class _EncoderShards:
    """The shards of one encoder name: a digest→row index and the vector blocks."""

    def __init__(self, folder: Path, name: str, dim: int) -> None:
        self.folder = folder
        self.name = name
        self.dim = dim
        self.lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._index: dict[bytes, int] = {}
        self._blocks: list[npt.NDArray[np.float32]] = []
        self._block_ids: list[str] = []
        self._block_keys: list[bytes | None] = []  # kept for small blocks, for merging
        self._starts: list[int] = []
        self._n_rows = 0
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._index)

    def refresh(self) -> None:
        """Read shards written since the last look (by this or another process)."""
        if not self.folder.is_dir():
            return
        ids = sorted(p.name[len("keys-") : -len(".npy")] for p in self.folder.glob("keys-*.npy"))
        for shard_id in ids:
            if shard_id not in self._seen:
                self._seen.add(shard_id)
                self._read_shard(shard_id)

    def _read_shard(self, shard_id: str) -> None:
        keys_path = self.folder / f"keys-{shard_id}.npy"
        vecs_path = self.folder / f"vecs-{shard_id}.npy"
        try:
            keys = np.load(keys_path, allow_pickle=False)
            # large shards stay on disk; small ones are read so they hold no file handle
            big = vecs_path.stat().st_size >= MMAP_MIN_BYTES
            vecs = np.load(vecs_path, mmap_mode="r" if big else None, allow_pickle=False)
            problem = self._shape_problem(keys, vecs)
        except FileNotFoundError:
            if not keys_path.exists():  # merged away by another process meanwhile
                return
            problem = f"{vecs_path.name} is missing"
        except (OSError, ValueError, EOFError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            self._quarantine(shard_id, problem)
            return
        self._add(shard_id, keys, vecs)

    def _shape_problem(self, keys: Any, vecs: Any) -> str:
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            return f"keys have dtype {keys.dtype} and shape {keys.shape}, expected uint8 (n, 32)"
        if vecs.dtype != np.float32 or vecs.shape != (keys.shape[0], self.dim):
            return (
                f"vectors have dtype {vecs.dtype} and shape {vecs.shape}, expected float32 "
                f"({keys.shape[0]}, {self.dim})"
            )
        return ""

    def _quarantine(self, shard_id: str, problem: str) -> None:
        message = (
            f"embedding cache shard {self.folder / f'keys-{shard_id}.npy'} is unreadable "
            f"({problem}); ignoring it, its texts will be embedded again"
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        logger.warning(message)
        for kind in ("keys", "vecs"):
            path = self.folder / f"{kind}-{shard_id}.npy"
            # it may be gone already, or moved aside by another process
            with contextlib.suppress(OSError):
                os.replace(path, self.folder / f"corrupt-{kind}-{shard_id}.npy")

    def _add(
        self, shard_id: str, keys: npt.NDArray[np.uint8], vecs: npt.NDArray[np.float32]
    ) -> None:
        n = int(keys.shape[0])
        raw = np.ascontiguousarray(keys).tobytes()
        digests = [raw[i : i + KEY_BYTES] for i in range(0, n * KEY_BYTES, KEY_BYTES)]
        self._index.update(zip(digests, range(self._n_rows, self._n_rows + n), strict=True))
        self._starts.append(self._n_rows)
        self._blocks.append(vecs)
        self._block_ids.append(shard_id)
        self._block_keys.append(raw if n < SMALL_SHARD_ROWS else None)
        self._n_rows += n

    def lookup(self, keys: Sequence[bytes]) -> npt.NDArray[np.int64]:
        """Row of every key in the concatenated shards, -1 where absent."""
        get = self._index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def gather(self, rows: npt.NDArray[np.int64]) -> FloatMatrix:
        """Vectors of the given rows, shape (len(rows), dim)."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        starts = np.asarray(self._starts, dtype=np.int64)
        block_of = np.searchsorted(starts, rows, side="right") - 1
        for block in np.unique(block_of):
            mask = block_of == block
            out[mask] = self._blocks[block][rows[mask] - starts[block]]
        return out

    def append(self, keys: Sequence[bytes], vecs: FloatMatrix) -> None:
        """Write one new shard and index it; merge small shards when they pile up."""
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "meta.json"
        if not meta.exists():
            info = {"name": self.name, "dim": self.dim, "format": _FORMAT}
            atomic_write_bytes(meta, (json.dumps(info, indent=2) + "\n").encode())
        shard_id = self._write_shard(key_array, vecs)
        self._seen.add(shard_id)
        self._add(shard_id, key_array, vecs)
        small = [i for i, block in enumerate(self._blocks) if len(block) < SMALL_SHARD_ROWS]
        if len(small) > MAX_SMALL_SHARDS:
            self._merge(small)

    def _write_shard(self, keys: npt.NDArray[np.uint8], vecs: FloatMatrix) -> str:
        shard_id = _new_shard_id()
        # vectors first: a keys file is the promise that its vectors are complete
        for kind, array in (("vecs", vecs), ("keys", keys)):
            with atomic_path(self.folder / f"{kind}-{shard_id}.npy") as tmp, tmp.open("wb") as fh:
                np.save(fh, array, allow_pickle=False)
        return shard_id

    def _merge(self, blocks: list[int]) -> None:
        """Replace many small shards by one.

        A long-lived process that embeds a few texts per call (the HTTP service) would
        otherwise leave thousands of tiny files behind.
        """
        latest: dict[bytes, int] = {}
        for i in blocks:
            raw = self._block_keys[i]
            assert raw is not None  # small blocks keep their keys
            start = self._starts[i]
            for j in range(0, len(raw), KEY_BYTES):
                latest[raw[j : j + KEY_BYTES]] = start + j // KEY_BYTES
        rows = np.fromiter(latest.values(), dtype=np.int64, count=len(latest))
        merged_keys = np.frombuffer(b"".join(latest), dtype=np.uint8).reshape(-1, KEY_BYTES)
        self._write_shard(merged_keys, self.gather(rows))
        # the merged shard is in place, so the small ones can go; keys first (see
        # _read_shard: a reader that finds no keys file skips the shard quietly)
        for i in blocks:
            for kind in ("keys", "vecs"):
                with contextlib.suppress(OSError):
                    (self.folder / f"{kind}-{self._block_ids[i]}.npy").unlink()
        logger.debug("merged %d small cache shards of %s", len(blocks), self.name)
        self._reset()
        self.refresh()


class EmbeddingCache:
    """Vectors on disk, keyed by (encoder name, SHA-256 of the exact text).

    Built for 10^4–10^6 texts per encoder: lookups are one dict access per text,
    vectors are memory-mapped, writes append a shard. Safe for several threads and for
    several processes sharing the directory (see the module docstring for the layout).

    Parameters
    ----------
    directory : str or Path
        Root of the cache; one sub-folder per encoder name is created on first write.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> cache.add("demo", [text_key("hi")], np.ones((1, 2), dtype=np.float32) / np.sqrt(2))
    >>> found, vectors = cache.lookup("demo", 2, [text_key("hi"), text_key("other")])
    >>> found.tolist(), vectors.shape
    ([True, False], (1, 2))
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self._stores: dict[str, _EncoderShards] = {}
        self._lock = threading.Lock()

    def folder(self, name: str) -> Path:
        """The folder holding the shards of encoder ``name``."""
        return self.directory / _folder_name(name)

    def _store(self, name: str, dim: int) -> _EncoderShards:
        with self._lock:
            store = self._stores.get(name)
            if store is None:
                store = self._stores[name] = _EncoderShards(self.folder(name), name, dim)
        if store.dim != dim:
            raise ConfigError(
                f"encoder {name!r} is cached with {store.dim} dimensions but now has {dim}; "
                "an encoder's name must change whenever its vectors change"
            )
        return store

    def lookup(
        self, name: str, dim: int, keys: Sequence[bytes]
    ) -> tuple[npt.NDArray[np.bool_], FloatMatrix]:
        """Find cached vectors.

        Parameters
        ----------
        name : str
            Encoder name.
        dim : int
            Its vector length.
        keys : sequence of bytes of length n
            Text keys from :func:`text_key`.

        Returns
        -------
        found : ndarray of shape (n,), bool
        vectors : ndarray of shape (found.sum(), dim), float32
            The vectors of the found keys, in order.
        """
        store = self._store(name, dim)
        with store.lock:
            store.refresh()
            rows = store.lookup(keys)
            found = rows >= 0
            vectors = store.gather(rows[found])
        # a shard with the right size but damaged contents shows up here
        norms = np.linalg.norm(vectors, axis=1)
        valid = np.isfinite(norms) & ((np.abs(norms - 1.0) < _NORM_TOLERANCE) | (norms == 0.0))
        if not valid.all():
            message = (
                f"embedding cache for {name!r} returned {int((~valid).sum())} damaged vectors "
                "(not finite or not unit length); embedding those texts again"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            logger.warning(message)
            found[np.flatnonzero(found)[~valid]] = False
            vectors = vectors[valid]
        return found, vectors

    def add(self, name: str, keys: Sequence[bytes], vectors: FloatMatrix) -> None:
        """Store ``vectors`` (shape (len(keys), dim), float32) under ``keys`` as a new shard."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ConfigError(
                f"cannot cache {vectors.shape} vectors under {len(keys)} keys; give one row per key"
            )
        if not len(keys):
            return
        store = self._store(name, int(vectors.shape[1]))
        with store.lock:
            store.append(keys, vectors)

    def __len__(self) -> int:
        """Texts indexed so far, over the encoder names used through this object."""
        return sum(len(store) for store in self._stores.values())

    def names(self) -> list[str]:
        """Names of the encoders with a folder in this cache (from their ``meta.json``)."""
        names = []
        for meta in sorted(self.directory.glob("*/meta.json")):
            try:
                names.append(str(json.loads(meta.read_text(encoding="utf-8"))["name"]))
            except (OSError, ValueError, KeyError, TypeError):
                logger.warning("unreadable cache metadata %s", meta)
        return names

    def clear(self, name: str | None = None) -> None:
        """Delete the cached vectors of encoder ``name``, or of every encoder."""
        with self._lock:
            if name is None:
                folders = [p for p in self.directory.glob("*") if (p / "meta.json").exists()]
                self._stores.clear()
            else:
                folders = [self.folder(name)]
                self._stores.pop(name, None)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r})"


class CachedEncoder:
    """Wrap an encoder with an on-disk cache: each distinct text is embedded once, ever.

    ``encode`` looks every text up, sends only the missing ones (each distinct text
    once) to ``inner``, stores them as a new shard and returns all rows in input order.
    A second run over the same texts embeds nothing and, for
    :class:`SentenceTransformerEncoder`, never loads the model.

    Parameters
    ----------
    inner : Encoder
        The encoder to cache; its ``name`` is the cache key, with the text's hash.
    cache_dir : str, Path or EmbeddingCache
        Cache directory (or an open cache to share between encoders).

    Attributes
    ----------
    last_hits : int
        Distinct non-blank texts of the last call found in the cache.
    last_misses : int
        Distinct non-blank texts of the last call that ``inner`` embedded.
        ``last_hits + last_misses`` is the number of distinct non-blank texts; blank
        texts (zero rows) count in neither.

    Examples
    --------
    >>> import tempfile
    >>> from usergroups.embedding import HashingEncoder
    >>> enc = CachedEncoder(HashingEncoder(dim=16), tempfile.mkdtemp())
    >>> _ = enc.encode(["a", "b", "a", ""])
    >>> enc.last_hits, enc.last_misses
    (0, 2)
    >>> _ = enc.encode(["b", "c"])
    >>> enc.last_hits, enc.last_misses
    (1, 1)
    """

    def __init__(self, inner: Encoder, cache_dir: str | Path | EmbeddingCache) -> None:
        self.inner = inner
        self.cache = (
            cache_dir if isinstance(cache_dir, EmbeddingCache) else EmbeddingCache(cache_dir)
        )
        self.last_hits = 0
        self.last_misses = 0

    @property
    def name(self) -> str:
        """``inner.name``: caching does not change the vectors."""
        return self.inner.name

    @property
    def dim(self) -> int:
        """``inner.dim``."""
        return self.inner.dim

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts`` through the cache; see :meth:`Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Rows in the order of ``texts``; zero rows for blank texts.
        """
        texts = check_texts(texts)
        name, dim = self.name, self.dim
        # map every non-blank text to its first occurrence; blank texts stay -1
        first: dict[str, int] = {}
        position = np.fromiter(
            (-1 if is_blank(t) else first.setdefault(t, len(first)) for t in texts),
            dtype=np.int64,
            count=len(texts),
        )
        distinct = list(first)
        keys = [text_key(t) for t in distinct]
        vectors = np.zeros((len(distinct), dim), dtype=np.float32)
        found = np.zeros(len(distinct), dtype=bool)
        if distinct:
            found, cached = self.cache.lookup(name, dim, keys)
            vectors[found] = cached
        missing = np.flatnonzero(~found)
        if missing.size:
            new = self.inner.encode([distinct[i] for i in missing], show_progress=show_progress)
            new = check_encoded(new, missing.size, dim, name)
            vectors[missing] = new
            try:
                self.cache.add(name, [keys[i] for i in missing], new)
            except OSError as exc:
                # losing the cache must not lose an hour of embedding
                message = f"could not write the embedding cache at {self.cache.directory}: {exc}"
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                logger.warning(message)
        self.last_misses = int(missing.size)
        self.last_hits = len(distinct) - self.last_misses
        logger.info(
            "embedded %s new texts, %s from cache (%s)",
            f"{self.last_misses:,}",
            f"{self.last_hits:,}",
            name,
        )
        out = np.zeros((len(texts), dim), dtype=np.float32)
        rows = position >= 0
        out[rows] = vectors[position[rows]]
        return out

    def __repr__(self) -> str:
        return f"CachedEncoder({self.inner!r}, {self.cache!r})"
