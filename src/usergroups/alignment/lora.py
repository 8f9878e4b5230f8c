"""LoRA fine-tuning of the sentence encoder on the interaction log (``align.method="lora"``).

The projection head (:mod:`usergroups.alignment.head`) bends frozen vectors; LoRA
(Hu et al., 2021, through ``peft``) lets the encoder itself move, with low-rank adapters
on the attention's query and value projections. The objective is the head's: a review
goes through the encoder (mean pooling, unit norm), the head's map ``W`` and the item
vectors, and the loss is the multinomial cross-entropy of its author's items. The head's
item vectors, bias and scale stay fixed; the adapters and ``W`` learn.

With ``align.lora_objective="contrastive"`` the loss is instead a symmetric InfoNCE between
each review and a document of the item it is about (:mod:`usergroups.alignment.contrastive`),
as BLaIR trains on Amazon Reviews 2023; only the adapters learn, and the head is retrained
afterwards on the new vectors.

On two CPU cores a step of 16 reviews at 128 tokens takes about a second, so training is
bounded by a wall-time budget (``align.lora_budget_s``), not by epochs. Only the
training part of the validation carve is used, so the choices made afterwards on the
carve's validation users stay honest.

Adapters are cached under ``<cache>/lora/adapter-<key>/`` (:func:`lora_cache_key`: the
base model, the training data and every setting), so an equal second run trains nothing.
They are saved with ``peft`` (``adapter_config.json``, ``adapter_model.safetensors``, plus
``training.json``) and copied into the model directory's ``adapter/`` folder. To encode,
they are merged into a copy of the base model kept under the embedding cache, keyed by the
adapters' SHA-256, so the ordinary encoder (and its cache, keyed by the merged model's
fingerprint) serves the adapted model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._deps import require
from usergroups.alignment.contrastive import CHARS_PER_TOKEN, ContrastivePairs, info_nce, make_pairs
from usergroups.alignment.head import AlignmentHead
from usergroups.errors import ConfigError, DataError

__all__ = [
    "LoraResult",
    "adapter_digest",
    "fine_tune_lora",
    "lora_cache_key",
    "merged_model_dir",
]

logger = logging.getLogger(__name__)

TARGET_MODULES = ("query", "value")
"""BERT attention projections that get adapters."""


Objective = Literal["head", "contrastive"]
OBJECTIVES: tuple[str, ...] = ("head", "contrastive")
CACHE_FORMAT = 1
"""Bumped when training changes so that old cached adapters are not reused."""


@dataclass
class LoraResult:
    """What :func:`fine_tune_lora` did (or, on a cache hit, what the cached run did)."""

    adapter_dir: Path
    steps: int
    texts_seen: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    objective: str = "head"
    cache_hit: bool = False
    key: str | None = None


def lora_cache_key(
    model_path: str | Path,
    texts: list[str],
    user_of_text: npt.ArrayLike,
    targets: sp.spmatrix,
    *,
    item_of_text: npt.ArrayLike | None = None,
    item_titles: list[str] | None = None,
    head: AlignmentHead | None = None,
    settings: dict[str, Any],
) -> str:
    """SHA-256 (first 16 hex digits) of everything a LoRA run's adapters depend on.

    The base model's fingerprint, the training texts with their authors' targets and items
    (and titles), the head's starting state for the ``"head"`` objective, and ``settings``
    (the LoRA fields, objective, budget and seed). Wall-time-budgeted training is not
    bit-for-bit reproducible across machines; the key makes a second run on the same data
    and settings free, which is its purpose.
    """
    from usergroups.embedding.sentence_transformer import model_fingerprint

    digest = hashlib.sha256()

    def add(tag: str, data: bytes) -> None:
        digest.update(f"{tag}:{len(data)}:".encode())
        digest.update(data)

    add("format", str(CACHE_FORMAT).encode())
    add("model", model_fingerprint(model_path).encode())
    add("settings", json.dumps(settings, sort_keys=True, default=str).encode())
    add("texts", "\x1f".join(texts).encode("utf-8", "surrogatepass"))
    add("users", np.ascontiguousarray(user_of_text, dtype=np.int64).tobytes())
    x = sp.csr_matrix(targets, dtype=np.float32)
    x.sort_indices()
    add("shape", np.asarray(x.shape, dtype=np.int64).tobytes())
    for arr in (x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data):
        add("targets", np.ascontiguousarray(arr).tobytes())
    if item_of_text is not None:
        add("items", np.ascontiguousarray(item_of_text, dtype=np.int64).tobytes())
    if item_titles is not None:
        add("titles", "\x1f".join(str(t or "") for t in item_titles).encode())
    if head is not None:
        for name in ("W_", "item_vectors_", "item_bias_", "scale_"):
            add(name, np.ascontiguousarray(getattr(head, name), dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def fine_tune_lora(
    model_path: str | Path,
    texts: list[str],
    user_of_text: npt.NDArray[np.int64],
    targets: sp.csr_matrix,
    head: AlignmentHead | None,
    out_dir: str | Path | None = None,
    *,
    objective: Objective = "head",
    item_of_text: npt.ArrayLike | None = None,
    item_titles: list[str] | None = None,
    rank: int = 8,
    budget_s: float = 300.0,
    max_seq_length: int = 128,
    batch_size: int = 16,
    lr: float = 5e-4,
    n_item_reviews: int = 3,
    temperature: float = 0.05,
    cache_dir: str | Path | None = None,
    show_progress: bool = False,
    random_state: int = 0,
) -> LoraResult:
    """Train LoRA adapters within ``budget_s``, or reuse the cached ones of an equal run.

    Parameters
    ----------
    model_path : path
        The base sentence-transformers model directory.
    texts : list of str
        Training texts (the carve's kept texts).
    user_of_text : ndarray of shape (len(texts),)
        Row of ``targets`` each text belongs to.
    targets : sparse matrix of shape (n_users, n_items)
        Training interactions; a text's target is its author's row.
    head : AlignmentHead or None
        A fitted head, needed by ``objective="head"``: its ``W_`` is fine-tuned along with
        the adapters (updated in place when training runs).
    out_dir : path, optional
        Where the adapters are written; with ``cache_dir`` it is not needed (they go to
        ``cache_dir / "adapter-<key>"``).
    objective : {"head", "contrastive"}
        ``"head"``: the alignment head's softmax over all items of the author's items.
        ``"contrastive"``: symmetric InfoNCE between each review and its item's document
        (:mod:`usergroups.alignment.contrastive`); only the adapters learn.
    item_of_text : array-like of shape (len(texts),), optional
        Item of each text (-1 when unknown); required by ``"contrastive"``.
    item_titles : list of str, optional
        Title of each item ("" for none), put first in item documents.
    n_item_reviews : int
        Other reviews in an item document.
    temperature : float
        Of the contrastive loss.
    cache_dir : path, optional
        Adapters are kept under ``cache_dir / "adapter-<key>"`` (key:
        :func:`lora_cache_key`), written to a temporary folder and renamed; a second call
        with the same key trains nothing.
    show_progress : bool
        A progress bar (steps, loss, seconds left) when stderr is a terminal.

    Returns
    -------
    LoraResult

    Examples
    --------
    >>> fine_tune_lora(path, texts, users, x_train, head, cache_dir=cache,
    ...                objective="contrastive", item_of_text=items)  # doctest: +SKIP

    Long because its docstring documents the parameters and the rule in full; the
    code itself is 59 lines.
    """
    _check_arguments(objective, rank, head, item_of_text, out_dir, cache_dir)
    run = _Training(
        objective,
        rank,
        budget_s,
        max_seq_length,
        batch_size,
        lr,
        n_item_reviews,
        temperature,
        random_state,
    )
    inputs = _Inputs(model_path, texts, user_of_text, targets, head, item_of_text, item_titles)
    key: str | None = None
    if cache_dir is not None:
        key = inputs.cache_key(run)
        cached = Path(cache_dir) / f"adapter-{key}"
        if (cached / "adapter_config.json").exists():
            logger.info("LoRA adapters reused from %s", cached)
            return _result(cached, _read_training(cached), objective, cache_hit=True, key=key)
    adapted, record = _train(inputs, run, show_progress)
    if cache_dir is None:
        assert out_dir is not None
        out = Path(out_dir)
        _write_adapters(adapted, record, out)
    else:
        out = Path(cache_dir) / f"adapter-{key}"
        _store_in_cache(adapted, record, out)
    logger.info(
        "LoRA (%s): %d steps, %d texts in %.0f s; adapters in %s",
        objective,
        record["steps"],
        record["texts_seen"],
        record["seconds"],
        out,
    )
    return _result(out, record, objective, cache_hit=False, key=key)


def _check_arguments(
    objective: str,
    rank: int,
    head: AlignmentHead | None,
    item_of_text: npt.ArrayLike | None,
    out_dir: str | Path | None,
    cache_dir: str | Path | None,
) -> None:
    """Raise :class:`ConfigError` for a setting :func:`fine_tune_lora` cannot train with."""
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"lora_objective={objective!r} is not one of " + ", ".join(map(repr, OBJECTIVES))
        )
    if rank < 1:
        raise ConfigError(f"lora_rank must be >= 1, got {rank}")
    if objective == "head" and head is None:
        raise ConfigError("lora_objective='head' needs a fitted alignment head")
    if objective == "contrastive" and item_of_text is None:
        raise ConfigError("lora_objective='contrastive' needs item_of_text (-1 when unknown)")
    if out_dir is None and cache_dir is None:
        raise ConfigError("fine_tune_lora needs out_dir or cache_dir")


@dataclass(frozen=True)
class _Training:
    """The settings of one run: :func:`fine_tune_lora`'s arguments of the same names."""

    objective: str
    rank: int
    budget_s: float
    max_seq_length: int
    batch_size: int
    lr: float
    n_item_reviews: int
    temperature: float
    random_state: int

    def to_dict(self) -> dict[str, Any]:
        """Every setting the adapters depend on: part of the cache key and of
        ``training.json``."""
        settings: dict[str, Any] = {
            "objective": self.objective,
            "rank": self.rank,
            "budget_s": float(self.budget_s),
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "random_state": int(self.random_state),
            "target_modules": list(TARGET_MODULES),
        }
        if self.objective == "contrastive":
            settings.update(n_item_reviews=self.n_item_reviews, temperature=float(self.temperature))
        return settings


@dataclass(frozen=True)
class _Inputs:
    """What a run trains on: :func:`fine_tune_lora`'s arguments of the same names."""

    model_path: str | Path
    texts: list[str]
    user_of_text: npt.ArrayLike
    targets: sp.spmatrix
    head: AlignmentHead | None
    item_of_text: npt.ArrayLike | None
    item_titles: list[str] | None

    def cache_key(self, run: _Training) -> str:
        """:func:`lora_cache_key` of training ``run`` on these inputs (those its objective
        reads)."""
        contrastive = run.objective == "contrastive"
        return lora_cache_key(
            self.model_path,
            self.texts,
            self.user_of_text,
            self.targets,
            item_of_text=self.item_of_text if contrastive else None,
            item_titles=self.item_titles if contrastive else None,
            head=self.head if run.objective == "head" else None,
            settings=run.to_dict(),
        )


def _result(
    directory: Path, record: dict[str, Any], objective: str, *, cache_hit: bool, key: str | None
) -> LoraResult:
    """The :class:`LoraResult` of adapters in ``directory`` from their ``training.json``
    record, so that a first run and a cache hit report the same figures."""
    return LoraResult(
        directory,
        int(record.get("steps", 0)),
        int(record.get("texts_seen", 0)),
        float(record.get("seconds", 0.0)),
        [float(v) for v in record.get("losses", [])],
        objective,
        cache_hit=cache_hit,
        key=key,
    )


def _write_adapters(adapted: Any, record: dict[str, Any], directory: Path) -> None:
    """The adapters (``peft``'s files) and ``training.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    adapted.save_pretrained(str(directory))
    (directory / TRAINING_FILE).write_text(json.dumps(record))


def _store_in_cache(adapted: Any, record: dict[str, Any], out: Path) -> None:
    """:func:`_write_adapters` into a temporary folder renamed to ``out``, so a crash leaves
    nothing half-written and a concurrent equal run's adapters are kept."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out.parent))
    try:
        _write_adapters(adapted, record, tmp)
        try:
            os.replace(tmp, out)
        except OSError:
            # another run stored the same key meanwhile: keep theirs
            if not (out / "adapter_config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


TRAINING_FILE = "training.json"
"""Beside the adapters: steps, seconds, losses and settings of the run that made them."""


def _read_training(directory: Path) -> dict[str, Any]:
    path = directory / TRAINING_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        logger.warning("unreadable %s; LoRA training figures unknown", path)
        return {}
    return data if isinstance(data, dict) else {}


def _train(inputs: _Inputs, run: _Training, show_progress: bool) -> tuple[Any, dict[str, Any]]:
    """The training; returns the peft model and the run's ``training.json`` record.

    The steps, in order: the texts to train on, the encoder with its adapters, the loss of a
    batch (the objective's), the loop until the budget is spent. The head's ``W_`` is
    updated in place with the ``"head"`` objective.
    """
    torch = require("torch", "embed")
    texts, head, item_of_text = inputs.texts, inputs.head, inputs.item_of_text
    x = sp.csr_matrix(inputs.targets, dtype=np.float32)
    users = np.asarray(inputs.user_of_text, dtype=np.int64)
    # seeded before the model is built: LoRA's initial weights and dropout draw from it
    torch.manual_seed(int(run.random_state))
    rng = np.random.default_rng(run.random_state)
    pairs: ContrastivePairs | None = None
    if run.objective == "contrastive":
        assert item_of_text is not None
        pairs = make_pairs(
            item_of_text, users, x, inputs.item_titles, rng, n_reviews=run.n_item_reviews
        )
        usable = np.arange(len(pairs), dtype=np.int64)
    else:
        usable = np.flatnonzero(np.diff(x.indptr)[users] > 0)
        if len(usable) == 0:
            raise DataError("LoRA: no text whose author has training interactions")
    st, adapted = _adapted_encoder(inputs.model_path, run.rank, run.max_seq_length)
    params = [p for p in adapted.parameters() if p.requires_grad]
    w: Any = None
    if pairs is not None:
        loss_of = _contrastive_loss(st, texts, pairs, rng, run)
    else:
        assert head is not None
        w = torch.nn.Parameter(torch.from_numpy(head.W_.copy()))
        params.append(w)
        loss_of = _head_loss(st, texts, head, w, x, users)
    opt = torch.optim.AdamW(params, lr=run.lr, weight_decay=0.0)
    st.train()
    steps, seen, seconds, losses = _train_within_budget(
        loss_of, opt, usable, rng, run, show_progress
    )
    st.eval()
    if w is not None:
        assert head is not None
        head.W_ = w.detach().numpy().astype(np.float32).copy()
    # rounded as the cache stores them, so a first run and a cache hit report the same
    record = {
        "objective": run.objective,
        "steps": steps,
        "texts_seen": seen,
        "seconds": round(seconds, 2),
        "losses": [round(v, 5) for v in losses],
        "settings": run.to_dict(),
    }
    return adapted, record


def _adapted_encoder(model_path: str | Path, rank: int, max_seq_length: int) -> tuple[Any, Any]:
    """The sentence-transformers model with LoRA adapters on its backbone, and the peft model."""
    peft = require("peft", "align")
    st_module = require("sentence_transformers", "embed", package="sentence-transformers")
    st = st_module.SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    st.max_seq_length = max_seq_length
    transformer = st[0]
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.05,
        target_modules=list(TARGET_MODULES),
    )
    adapted = peft.get_peft_model(transformer.auto_model, config)
    _set_backbone(transformer, adapted)
    return st, adapted


def _embedder(st: Any) -> Callable[[list[str]], Any]:
    """Unit-norm sentence embeddings of texts, through ``st`` with gradients."""
    normalize = require("torch", "embed").nn.functional.normalize
    tokenize = getattr(st, "preprocess", None) or st.tokenize

    def embed(batch_texts: list[str]) -> Any:
        return normalize(st(tokenize(batch_texts))["sentence_embedding"], dim=1)

    return embed


def _head_loss(
    st: Any,
    texts: list[str],
    head: AlignmentHead,
    w: Any,
    x: sp.csr_matrix,
    users: npt.NDArray[np.int64],
) -> Callable[[npt.NDArray[np.int64]], Any]:
    """The ``"head"`` objective's loss of a batch of texts: the multinomial cross-entropy of
    their authors' items, through the head's map ``w`` (which learns) and its fixed items."""
    torch = require("torch", "embed")
    embed = _embedder(st)
    item_vecs = torch.from_numpy(head.item_vectors_)
    bias = torch.from_numpy(head.item_bias_)
    scale = float(head.scale_)

    def loss_of(batch: npt.NDArray[np.int64]) -> Any:
        emb = embed([texts[i] for i in batch])
        z = torch.nn.functional.normalize(emb @ w.T, dim=1)
        logits = scale * (z @ item_vecs.T) + bias
        y = torch.from_numpy(x[users[batch]].toarray())
        return -((y * torch.log_softmax(logits, dim=1)).sum(dim=1) / y.sum(dim=1)).mean()

    return loss_of


def _contrastive_loss(
    st: Any,
    texts: list[str],
    pairs: ContrastivePairs,
    rng: np.random.Generator,
    run: _Training,
) -> Callable[[npt.NDArray[np.int64]], Any]:
    """The ``"contrastive"`` objective's loss of a batch of pairs (InfoNCE between reviews
    and item documents); None for a batch of one, which has no in-batch negative."""
    torch = require("torch", "embed")
    embed = _embedder(st)
    max_chars = CHARS_PER_TOKEN * run.max_seq_length

    def loss_of(batch: npt.NDArray[np.int64]) -> Any:
        if len(batch) < 2:
            return None
        q = embed([texts[i] for i in pairs.text_rows[batch]])
        docs = pairs.documents(texts, batch, rng, n_reviews=run.n_item_reviews, max_chars=max_chars)
        return info_nce(q, embed(docs), torch.from_numpy(pairs.items[batch]), run.temperature)

    return loss_of


def _train_within_budget(
    loss_of: Callable[[npt.NDArray[np.int64]], Any],
    opt: Any,
    usable: npt.NDArray[np.int64],
    rng: np.random.Generator,
    run: _Training,
    show_progress: bool,
) -> tuple[int, int, float, list[float]]:
    """Gradient steps on batches of ``usable`` (reshuffled each pass) until ``run.budget_s``
    seconds are spent; returns (steps, texts seen, seconds, losses)."""
    batch_size, budget_s, objective = run.batch_size, run.budget_s, run.objective
    started = time.perf_counter()
    losses: list[float] = []
    steps = seen = 0
    order = usable[rng.permutation(len(usable))]
    pos = 0
    bar = _progress(budget_s, objective) if show_progress else None
    shown = 0
    try:
        while time.perf_counter() - started < budget_s:
            if pos >= len(order):
                order, pos = usable[rng.permutation(len(usable))], 0
            batch = order[pos : pos + batch_size]
            pos += batch_size
            loss = loss_of(batch)
            if loss is None:
                continue
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            steps += 1
            seen += len(batch)
            elapsed = time.perf_counter() - started
            if bar is not None:
                now = min(int(elapsed), int(budget_s))
                bar.update(now - shown)
                shown = now
                bar.set_postfix(step=steps, loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)
            if steps % 20 == 0:
                logger.info(
                    "LoRA (%s) step %d: loss %.4f (%.0f s, %.0f s left)",
                    objective,
                    steps,
                    np.mean(losses[-20:]),
                    elapsed,
                    max(budget_s - elapsed, 0.0),
                )
    finally:
        if bar is not None:
            bar.close()
    return steps, seen, time.perf_counter() - started, losses


def _progress(budget_s: float, objective: str) -> Any:
    """A tqdm bar over the budget's seconds (so its ETA is the time left), or None.

    Off when stderr is not a terminal or tqdm is not installed.
    """
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(
        total=int(budget_s),
        desc=f"LoRA ({objective})",
        unit="s",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s "
        "[{remaining} left{postfix}]",
    )


def _set_backbone(transformer: Any, model: Any) -> None:
    """Swap the Hugging Face model inside a sentence-transformers Transformer module.

    sentence-transformers 5 keeps it in ``model`` (``auto_model`` is a read-only alias);
    older releases in ``auto_model``.
    """
    if hasattr(transformer, "model") and not isinstance(
        getattr(type(transformer), "model", None), property
    ):
        transformer.model = model
    else:
        transformer.auto_model = model


def adapter_digest(adapter_dir: str | Path) -> str:
    """SHA-256 (first 12 hex digits) of the adapter's files."""
    digest = hashlib.sha256()
    for path in sorted(Path(adapter_dir).iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def merged_model_dir(base_model: str | Path, adapter_dir: str | Path, cache_dir: Path) -> Path:
    """A sentence-transformers model directory with the adapters merged into the base.

    Built once per adapter (keyed by :func:`adapter_digest`) under ``cache_dir``, written
    to a temporary directory first and renamed, so a crash leaves nothing half-written.
    """
    torch = require("torch", "embed")
    peft = require("peft", "align")
    st_module = require("sentence_transformers", "embed", package="sentence-transformers")
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise ConfigError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json)")
    target = Path(cache_dir) / f"lora-{adapter_digest(adapter_dir)}"
    if (target / "modules.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".lora-", dir=target.parent))
    try:
        with torch.no_grad():
            st = st_module.SentenceTransformer(str(base_model), device="cpu", local_files_only=True)
            transformer = st[0]
            adapted = peft.PeftModel.from_pretrained(transformer.auto_model, str(adapter_dir))
            _set_backbone(transformer, adapted.merge_and_unload())
            st.save(str(tmp))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "modules.json").exists():
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
