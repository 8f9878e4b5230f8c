"""A projection head that aligns frozen text vectors with behaviour.

Off-the-shelf sentence vectors describe what a text *says*; the head learns a map
``f(x) = normalise(W x)`` into a small space where a user's texts sit near the items
that user interacts with. Items live in the same space: an item's vector is its own
text vector mapped by the same ``W`` plus a free residual, ``e_i = normalise(W t_i +
r_i)``, so items with few interactions still borrow meaning from their titles.

Training objective (a multinomial likelihood, as in Mult-VAE): for a user with a bag of
text vectors and a binary item row ``y``,

    loss = - sum_i y_i log softmax(s * f(pool(bag)) . e + b)_i / sum_i y_i

with ``pool`` the mean of a random subset of the bag (each text kept with a probability
drawn per user per epoch, at least one kept), so that the same head serves a user known
by all their reviews and a new user known by one. ``s`` is a learned scale and ``b`` a
learned item bias (initialised at log-popularity).

Training runs in PyTorch (AdamW, written out here to skip the import of torch's compiler
stack that ``torch.optim`` triggers; full-batch softmax over the catalogue, mini-batches of
users); early stopping watches NDCG@10 of held-out items on a validation set that the
caller carves from the *training* data. Inference needs only the learned arrays and
NumPy, so a loaded model does not import torch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from usergroups._deps import require
from usergroups._lazy import lazy_module
from usergroups._typing import FloatMatrix
from usergroups.errors import ConfigError, DataError, NotFittedError
from usergroups.linalg import mean_rows, unit_rows
from usergroups.ranking import ndcg_at_k

if TYPE_CHECKING:
    import scipy.sparse as sp
else:
    sp = lazy_module("scipy.sparse")  # scipy loads where it is used (issue 25)

__all__ = ["AlignmentHead", "TextBags", "ndcg_at_k"]

# the old private name (and its old one-argument type), still imported elsewhere; the
# implementation is usergroups.linalg.unit_rows
_unit: Callable[[npt.NDArray[Any]], FloatMatrix] = unit_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextBags:
    """Each user's bag of text vectors: ``members`` (users × texts, 0/1) and ``vectors``.

    A user's input is the mean of (a subset of) the rows of ``vectors`` marked in their
    row of ``members``. Users with an empty bag get a zero input.
    """

    members: sp.csr_matrix
    vectors: FloatMatrix

    def __post_init__(self) -> None:
        if self.members.shape[1] != len(self.vectors):
            raise DataError(
                f"TextBags: members has {self.members.shape[1]} columns but there are "
                f"{len(self.vectors)} text vectors"
            )

    @property
    def n_users(self) -> int:
        return int(self.members.shape[0])

    def pooled(
        self, rows: npt.NDArray[np.int64] | None = None, keep: sp.csr_matrix | None = None
    ) -> FloatMatrix:
        """Unit-norm mean of each user's (kept) texts; zero rows for empty bags."""
        m = self.members if keep is None else keep
        if rows is not None:
            m = m[rows]
        return unit_rows(mean_rows(m, self.vectors))

    def random_subsets(self, rng: np.random.Generator, min_keep: float) -> sp.csr_matrix:
        """A copy of ``members`` with each text kept with a per-user random probability.

        Every non-empty bag keeps at least one text (its highest random draw).
        """
        m = self.members.tocsr()
        n_users = m.shape[0]
        p = rng.uniform(min_keep, 1.0, size=n_users)
        draws = rng.random(m.nnz)
        row_of = np.repeat(np.arange(n_users), np.diff(m.indptr))
        keep = draws < p[row_of]
        # force the best draw of every row to be kept
        if m.nnz:
            order = np.lexsort((-draws, row_of))
            first = np.ones(len(order), dtype=bool)
            first[1:] = row_of[order][1:] != row_of[order][:-1]
            keep[order[first]] = True
        data = keep.astype(np.float32)
        return sp.csr_matrix((data, m.indices, m.indptr), shape=m.shape)


class _AdamW:
    """AdamW (Loshchilov & Hutter) in a few lines.

    ``torch.optim`` imports torch's compiler stack on first use, about 6 s on this
    machine, longer than training the head; this is the same update without it.
    """

    def __init__(
        self,
        torch: Any,
        params: list[Any],
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.torch = torch
        self.params = params
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        with self.torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                g = p.grad
                p.mul_(1.0 - self.lr * self.weight_decay)
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                denom = (v / (1.0 - b2**self.t)).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-self.lr / (1.0 - b1**self.t))


def _usable_rows(bags: TextBags, targets: sp.csr_matrix) -> npt.NDArray[np.int64]:
    """Users with both a non-empty bag and interactions: the ones the head learns from."""
    n_users = targets.shape[0]
    if bags.n_users != n_users:
        raise DataError(f"AlignmentHead: {bags.n_users} bags for {n_users} target rows")
    usable = (np.diff(targets.indptr) > 0) & (np.diff(bags.members.indptr) > 0)
    rows_all = np.flatnonzero(usable)
    if len(rows_all) == 0:
        raise DataError(
            "AlignmentHead: no user has both texts and interactions to learn from (every "
            "text may have been empty, or no item has a title); fit without alignment with "
            "--align none (align.method = 'none'), or load non-empty texts"
        )
    return rows_all


class _HeadParams:
    """The head's trainable tensors, their loss on a batch, and snapshots of their arrays.

    ``W`` starts random (scaled by ``1/sqrt(d_in)``), the item residuals small, the item
    bias at log-popularity and the scale at 10.
    """

    def __init__(
        self,
        torch: Any,
        gen: Any,
        dim: int,
        targets: sp.csr_matrix,
        d_in: int,
        item_text: npt.NDArray[Any] | None,
    ) -> None:
        n_items = targets.shape[1]
        if item_text is None:
            item_text = np.zeros((n_items, d_in), dtype=np.float32)
        self.torch = torch
        self.item_text = torch.from_numpy(unit_rows(item_text))
        pop = np.asarray(targets.sum(axis=0)).ravel() + 1.0
        self.w = torch.nn.Parameter(torch.randn(dim, d_in, generator=gen) / np.sqrt(d_in))
        self.residual = torch.nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.01)
        self.bias = torch.nn.Parameter(torch.from_numpy(np.log(pop / pop.sum()).astype(np.float32)))
        self.log_scale = torch.nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def tensors(self) -> list[Any]:
        return [self.w, self.residual, self.bias, self.log_scale]

    def items(self) -> Any:
        """The item vectors ``e_i = normalise(W t_i + r_i)``."""
        return self.torch.nn.functional.normalize(self.item_text @ self.w.T + self.residual, dim=1)

    def loss(self, x: Any, y: Any) -> Any:
        """Mean multinomial cross-entropy of the items ``y`` given the pooled inputs ``x``."""
        z = self.torch.nn.functional.normalize(x @ self.w.T, dim=1)
        logits = self.log_scale.exp() * (z @ self.items().T) + self.bias
        logp = self.torch.log_softmax(logits, dim=1)
        return -((y * logp).sum(dim=1) / y.sum(dim=1)).mean()

    def snapshot(self) -> dict[str, Any]:
        """Copies of the arrays inference needs (``W``, item vectors, bias, scale)."""
        with self.torch.no_grad():
            return {
                "W": self.w.detach().numpy().copy(),
                "items": self.items().numpy().copy(),
                "bias": self.bias.detach().numpy().copy(),
                "scale": np.float32(self.log_scale.exp().item()),
            }


class AlignmentHead:
    """Map text vectors into a space aligned with interactions.

    Parameters
    ----------
    dim : int
        Dimension of the aligned space.
    max_epochs : int
        Upper bound on training epochs (early stopping usually ends sooner).
    patience : int
        Epochs without a better validation NDCG@10 before stopping.
    lr, weight_decay : float
        AdamW settings.
    batch_size : int
        Users per gradient step.
    min_keep : float
        Lower bound of the per-user probability of keeping each text of the bag.
    time_budget_s : float or None
        Stop after this many seconds of training, whatever the epoch.
    random_state : int

    Attributes
    ----------
    W_ : ndarray of shape (dim, d_in)
    item_vectors_ : ndarray of shape (n_items, dim), unit rows
    item_bias_ : ndarray of shape (n_items,)
    scale_ : float
    best_epoch_ : int
        Epochs trained (the best epoch when validation data was given).
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` and, with validation data, ``val_ndcg``.
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        max_epochs: int = 100,
        patience: int = 8,
        lr: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int = 256,
        min_keep: float = 0.2,
        time_budget_s: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.dim = dim
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.min_keep = min_keep
        self.time_budget_s = time_budget_s
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("dim", "max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"AlignmentHead: {name} must be a positive integer, got {value!r}"
                )
        if not 0.0 < self.min_keep <= 1.0:
            raise ConfigError(f"AlignmentHead: min_keep must be in (0, 1], got {self.min_keep}")
        if self.lr <= 0:
            raise ConfigError(f"AlignmentHead: lr must be > 0, got {self.lr}")

    def fit(
        self,
        bags: TextBags,
        targets: sp.csr_matrix,
        item_text: npt.NDArray[Any] | None = None,
        *,
        validation: tuple[TextBags, sp.csr_matrix, sp.csr_matrix] | None = None,
        epochs: int | None = None,
    ) -> AlignmentHead:
        """Train on users' bags against their item rows.

        Parameters
        ----------
        bags : TextBags
            One bag per row of ``targets``.
        targets : sparse matrix of shape (n_users, n_items)
            Binary interactions; users with an empty row or bag are skipped.
        item_text : ndarray of shape (n_items, d_in), optional
            Item text vectors (titles, descriptions, or pooled reviews); zero rows are fine.
        validation : (bags, seen, held_out), optional
            Validation users: their bags, their training items (masked when ranking) and
            the held-out items to find. Early stopping keeps the best epoch.
        epochs : int, optional
            Train exactly this many epochs (no early stopping), e.g. the ``best_epoch_``
            found on a validation carve, when refitting on all the training data.
        """
        self._check_params()
        torch = require("torch", "embed")
        targets = sp.csr_matrix(targets, dtype=np.float32)
        rows_all = _usable_rows(bags, targets)
        rng = np.random.default_rng(self.random_state)
        gen = torch.Generator().manual_seed(int(self.random_state))
        params = _HeadParams(torch, gen, self.dim, targets, bags.vectors.shape[1], item_text)
        opt = _AdamW(torch, params.tensors(), lr=self.lr, weight_decay=self.weight_decay)
        early_stopping = validation is not None and epochs is None
        n_epochs = int(epochs) if epochs is not None else self.max_epochs
        best_score, best_epoch, best_state, waited = -np.inf, 0, params.snapshot(), 0
        history: list[dict[str, float]] = []
        started = time.perf_counter()
        for epoch in range(1, n_epochs + 1):
            loss = self._train_epoch(params, opt, bags, targets, rows_all, rng)
            record = {"epoch": float(epoch), "loss": loss}
            if early_stopping:
                assert validation is not None
                state = params.snapshot()
                val = self._validate(state, validation)
                record["val_ndcg"] = val
                if val > best_score + 1e-6:
                    best_score, best_epoch, best_state, waited = val, epoch, state, 0
                else:
                    waited += 1
            else:
                best_epoch, best_state = epoch, params.snapshot()
            history.append(record)
            logger.info(
                "alignment epoch %d: loss %.4f%s",
                epoch,
                record["loss"],
                f", validation NDCG@10 {record['val_ndcg']:.4f}" if "val_ndcg" in record else "",
            )
            if early_stopping and waited >= self.patience:
                break
            if (
                self.time_budget_s is not None
                and time.perf_counter() - started > self.time_budget_s
            ):
                logger.info("alignment: time budget of %.0f s reached", self.time_budget_s)
                break
        self._set_arrays(best_state)
        self.best_epoch_ = int(best_epoch)
        self.best_val_ndcg_ = None if best_score == -np.inf else float(best_score)
        self.history_ = history
        self.train_seconds_ = time.perf_counter() - started
        return self

    def _train_epoch(
        self,
        params: _HeadParams,
        opt: _AdamW,
        bags: TextBags,
        targets: sp.csr_matrix,
        rows_all: npt.NDArray[np.int64],
        rng: np.random.Generator,
    ) -> float:
        """One pass over the users ``rows_all`` in random mini-batches, each user's input the
        mean of a random subset of their bag; returns the mean loss."""
        keep = bags.random_subsets(rng, self.min_keep)
        x_all = params.torch.from_numpy(bags.pooled(rows_all, keep))
        order = rows_all[rng.permutation(len(rows_all))]
        position = np.empty(targets.shape[0], dtype=np.int64)
        position[rows_all] = np.arange(len(rows_all))
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            x = x_all[params.torch.from_numpy(position[batch])]
            loss = params.loss(x, params.torch.from_numpy(targets[batch].toarray()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(batch)
        return total / len(order)

    def _validate(
        self,
        state: dict[str, Any],
        validation: tuple[TextBags, sp.csr_matrix, sp.csr_matrix],
    ) -> float:
        vbags, seen, held = validation
        z = unit_rows(vbags.pooled() @ state["W"].T)
        scores = state["scale"] * (z @ state["items"].T) + state["bias"]
        return ndcg_at_k(scores, held, seen)

    def _set_arrays(self, state: dict[str, Any]) -> None:
        self.W_ = np.asarray(state["W"], dtype=np.float32)
        self.item_vectors_ = np.asarray(state["items"], dtype=np.float32)
        self.item_bias_ = np.asarray(state["bias"], dtype=np.float32)
        self.scale_ = float(state["scale"])

    # ----------------------------------------------------------------- inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "W_"):
            raise NotFittedError("AlignmentHead is not fitted; call fit(...) first")

    def transform(self, x: npt.NDArray[Any]) -> FloatMatrix:
        """Aligned unit vectors of text vectors (or pooled bags); zero rows stay zero."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.W_.shape[1]:
            raise DataError(
                f"AlignmentHead.transform expects vectors of dimension {self.W_.shape[1]}, "
                f"got shape {x.shape}; was the model fitted with another encoder?"
            )
        return unit_rows(x @ self.W_.T)

    def item_scores(self, aligned: npt.NDArray[Any]) -> FloatMatrix:
        """Log-probabilities over items for aligned vectors (rows sum to 1 after exp)."""
        self._check_fitted()
        logits = self.scale_ * (np.asarray(aligned, dtype=np.float32) @ self.item_vectors_.T)
        logits = logits + self.item_bias_
        logits = logits - logits.max(axis=1, keepdims=True)
        return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The learned arrays, for the model directory's ``arrays.npz``."""
        self._check_fitted()
        return {
            "align_W": self.W_,
            "align_items": self.item_vectors_,
            "align_bias": self.item_bias_,
            "align_scale": np.array(self.scale_, dtype=np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> AlignmentHead:
        """Rebuild a fitted head from :meth:`to_arrays` output (no torch needed)."""
        head = cls(dim=int(arrays["align_W"].shape[0]))
        head._set_arrays(
            {
                "W": arrays["align_W"],
                "items": arrays["align_items"],
                "bias": arrays["align_bias"],
                "scale": float(arrays["align_scale"]),
            }
        )
        head.best_epoch_ = 0
        head.history_ = []
        return head

    def __repr__(self) -> str:
        return f"AlignmentHead(dim={self.dim}, random_state={self.random_state})"
