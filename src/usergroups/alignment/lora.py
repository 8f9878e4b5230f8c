"""LoRA fine-tuning of the sentence encoder on the interaction log (``align.method="lora"``).

The projection head (:mod:`usergroups.alignment.head`) bends frozen vectors; LoRA
(Hu et al., 2021, through ``peft``) lets the encoder itself move, with low-rank adapters
on the attention's query and value projections. The objective is the head's: a review
goes through the encoder (mean pooling, unit norm), the head's map ``W`` and the item
vectors, and the loss is the multinomial cross-entropy of its author's items. The head's
item vectors, bias and scale stay fixed; the adapters and ``W`` learn.

On two CPU cores a step of 16 reviews at 128 tokens takes about a second, so training is
bounded by a wall-time budget (``align.lora_budget_s``), not by epochs. Only the
training part of the validation carve is used, so the choices made afterwards on the
carve's validation users stay honest.

The adapters are saved with ``peft`` (``adapter_config.json``,
``adapter_model.safetensors``) in the model directory's ``adapter/`` folder. To encode,
they are merged into a copy of the base model kept under the embedding cache, keyed by the
adapters' SHA-256, so the ordinary encoder (and its cache, keyed by the merged model's
fingerprint) serves the adapted model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from usergroups._deps import require
from usergroups.alignment.head import AlignmentHead
from usergroups.errors import ConfigError, DataError

__all__ = ["LoraResult", "adapter_digest", "fine_tune_lora", "merged_model_dir"]

logger = logging.getLogger(__name__)

TARGET_MODULES = ("query", "value")
"""BERT attention projections that get adapters."""


@dataclass
class LoraResult:
    """What :func:`fine_tune_lora` did."""

    adapter_dir: Path
    steps: int
    texts_seen: int
    seconds: float
    losses: list[float] = field(default_factory=list)


def fine_tune_lora(
    model_path: str | Path,
    texts: list[str],
    user_of_text: npt.NDArray[np.int64],
    targets: sp.csr_matrix,
    head: AlignmentHead,
    out_dir: str | Path,
    *,
    rank: int = 8,
    budget_s: float = 300.0,
    max_seq_length: int = 128,
    batch_size: int = 16,
    lr: float = 5e-4,
    random_state: int = 0,
) -> LoraResult:
    """Train LoRA adapters (and the head's ``W``, updated in place) within ``budget_s``.

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
    head : AlignmentHead
        A fitted head; its ``W_`` is fine-tuned along with the adapters.
    out_dir : path
        Where the adapters are written (created).
    """
    torch = require("torch", "embed")
    peft = require("peft", "align")
    st_module = require("sentence_transformers", "embed", package="sentence-transformers")
    if rank < 1:
        raise ConfigError(f"lora_rank must be >= 1, got {rank}")
    targets = sp.csr_matrix(targets, dtype=np.float32)
    user_of_text = np.asarray(user_of_text, dtype=np.int64)
    usable = np.flatnonzero(np.diff(targets.indptr)[user_of_text] > 0)
    if len(usable) == 0:
        raise DataError("LoRA: no text whose author has training interactions")
    torch.manual_seed(int(random_state))
    rng = np.random.default_rng(random_state)
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
    w = torch.nn.Parameter(torch.from_numpy(head.W_.copy()))
    items = torch.from_numpy(head.item_vectors_)
    bias = torch.from_numpy(head.item_bias_)
    scale = float(head.scale_)
    params = [p for p in adapted.parameters() if p.requires_grad] + [w]
    tokenize = getattr(st, "preprocess", None) or st.tokenize
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    st.train()
    started = time.perf_counter()
    losses: list[float] = []
    steps = seen = 0
    order = usable[rng.permutation(len(usable))]
    pos = 0
    while time.perf_counter() - started < budget_s:
        if pos >= len(order):
            order, pos = usable[rng.permutation(len(usable))], 0
        batch = order[pos : pos + batch_size]
        pos += batch_size
        features = tokenize([texts[i] for i in batch])
        out = st(features)
        emb = torch.nn.functional.normalize(out["sentence_embedding"], dim=1)
        z = torch.nn.functional.normalize(emb @ w.T, dim=1)
        logits = scale * (z @ items.T) + bias
        y = torch.from_numpy(targets[user_of_text[batch]].toarray())
        loss = -((y * torch.log_softmax(logits, dim=1)).sum(dim=1) / y.sum(dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        steps += 1
        seen += len(batch)
        if steps % 20 == 0:
            logger.info(
                "LoRA step %d: loss %.4f (%.0f s)",
                steps,
                np.mean(losses[-20:]),
                time.perf_counter() - started,
            )
    st.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    adapted.save_pretrained(str(out_dir))
    head.W_ = w.detach().numpy().astype(np.float32).copy()
    seconds = time.perf_counter() - started
    logger.info("LoRA: %d steps, %d texts in %.0f s", steps, seen, seconds)
    return LoraResult(out_dir, steps, seen, seconds, losses)


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
