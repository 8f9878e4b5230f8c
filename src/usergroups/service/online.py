"""A loaded model plus the events since it was fitted: online user updates and assignment.

The model directory is read once and never written. Events change an in-memory overlay:

- each user's fused vector is the model's ``[sqrt(w) * semantic, sqrt(1 - w) * behaviour]``;
  both blocks are kept as running sums, the model's vector counting as many interactions as
  the user had (at least one);
- an event with a text adds the text's vector to the semantic sum; without a text it adds
  the item's vector (the mean semantic vector of the item's consumers in the model); the
  item's behaviour vector (likewise the mean of its consumers') is added to the behaviour
  sum. Items the model does not know count only through their text, and wait for a refit;
- the user's group is then the nearest centroid, the confidence the softmax the model uses,
  and the item joins the user's seen items, so recommendations change at once.

Sums commute, so replaying the stored events in any order after a restart rebuilds the
same overlay.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

from usergroups.linalg import unit_rows as l2_normalise
from usergroups.pipeline import GroupDiscovery, softmax_confidence
from usergroups.recommend import top_n
from usergroups.service.events import StoredEvent
from usergroups.service.topitems import TopItems

__all__ = ["BatchingEncoder", "OnlineModel", "UserState"]

logger = logging.getLogger(__name__)


class BatchingEncoder:
    """Encode texts from concurrent requests together, in one worker thread.

    Requests that arrive within ``max_wait_s`` of each other share one encoder call, made
    from one thread, so concurrent requests do not fight over the cores. How the call runs
    is the encoder's business, but a text's vector must not depend on the others of the
    call: the int8 encoder embeds each text on its own (``per_text``, issue 22), fp32
    encoders pad texts into batches that agree with single texts to float rounding. An
    encoder that embeds each text in a call of its own gains nothing from company, so its
    requests are taken one at a time, first come first served, without the wait: each is
    answered as soon as its own texts are embedded, not when a whole batch is (issue 25).
    A request never fails because of another: when a shared pass raises, each request's
    texts are encoded again on their own, and only the requests whose own texts fail get
    an error.

    With a per-text encoder a whole ``/assign`` can run on this thread (:meth:`submit`):
    its texts are then encoded where it runs, with no hand-over between threads, and
    requests are answered in the order they arrived (issue 25). ``n_threads`` such
    threads take them from one queue: with two, one request's scoring runs while the
    next one's text is in the model (whose calls take turns), as a process alone on two
    cores can afford.

    Parameters
    ----------
    inner : Encoder
        ``name``, ``dim``, ``encode(texts) -> (n, dim)``.
    max_batch : int
        Texts per forward pass.
    max_wait_s : float
        How long the first text of a batch waits for company.
    n_threads : int, default 1
        Threads that take the queue, for a per-text encoder (a batching one has one, which
        gathers each batch).
    """

    _INPUT_ERRORS = (UnicodeError, ValueError, TypeError)
    """What an encoder raises for texts it cannot take (a tokenizer given a lone surrogate)."""

    def __init__(
        self, inner: Any, *, max_batch: int = 32, max_wait_s: float = 0.002, n_threads: int = 1
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = int(inner.dim)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closing = threading.Lock()
        self._closed = False
        self.one_at_a_time = runs_per_text(inner)
        """Requests are encoded one by one, in arrival order (a per-text encoder)."""
        if n_threads < 1:
            from usergroups.errors import ConfigError

            raise ConfigError(f"n_threads={n_threads}; pass 1 or more encoder threads")
        self._threads = [
            threading.Thread(target=self._run, name="usergroups-encoder", daemon=True)
            for _ in range(n_threads if self.one_at_a_time else 1)
        ]
        for thread in self._threads:
            thread.start()

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Vectors of shape (len(texts), dim); blocks until the batch is encoded.

        Raises
        ------
        DataError
            If the encoder refuses these texts themselves (encoded without company, they
            still fail with a ``UnicodeError``, ``ValueError`` or ``TypeError``); the
            encoder's error is chained. Other failures are raised as they are.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if threading.current_thread() in self._threads:
            # a call submitted to this thread (submit): its texts are the current job
            return self._encode_alone(texts)
        fut: Future[np.ndarray] = Future()
        with self._closing:
            if self._closed:
                # a request that outlived a model swap: encode it here, unbatched
                return self._encode_alone(texts)
            self._queue.put((texts, fut))
        return fut.result()

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T] | None:
        """Run ``fn(*args)`` on the encoder thread, after the work queued before it.

        For a per-text encoder (:attr:`one_at_a_time`) a whole request can run there: the
        texts it encodes are encoded in place (:meth:`encode` on this thread), so the
        request hands nothing to another thread and waits for nobody but the requests
        ahead of it. None once the encoder is closed (a model swap): run ``fn``
        elsewhere then.
        """
        fut: Future[_T] = Future()
        with self._closing:
            if self._closed:
                return None
            # the caller's context (its request id, for the log) goes with the call
            self._queue.put(_Call(fn, args, fut, contextvars.copy_context()))
        return fut

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.inner.encode(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            # rows that do not line up would hand one request another's vectors
            raise RuntimeError(
                f"the encoder returned an array of shape {vectors.shape} for {len(texts)} texts"
            )
        return vectors

    def _encode_alone(self, texts: list[str]) -> np.ndarray:
        """One request's texts on their own; an input failure becomes a DataError."""
        from usergroups.errors import DataError

        try:
            return self._encode(texts)
        except self._INPUT_ERRORS as exc:
            what = "this text" if len(texts) == 1 else f"these {len(texts)} texts"
            raise DataError(
                f"the encoder {self.name!r} cannot encode {what}: {type(exc).__name__}: "
                f"{exc}; send UTF-8 text without lone surrogates or control characters"
            ) from exc

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if isinstance(first, _Call):
                first.run()
                continue
            batch = [first]
            n = len(first[0])
            deadline = _now() + self.max_wait_s
            stop = False
            call: _Call[Any] | None = None
            while n < self.max_batch and not self.one_at_a_time:
                remaining = deadline - _now()
                try:
                    nxt = (
                        self._queue.get(timeout=max(remaining, 0.0))
                        if remaining > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if isinstance(nxt, _Call):  # calls are not batched: answer the batch first
                    call = nxt
                    break
                batch.append(nxt)
                n += len(nxt[0])
            self._answer(batch)
            if call is not None:
                call.run()
            if stop:
                return

    def _answer(self, batch: list[tuple[list[str], Future[np.ndarray]]]) -> None:
        """Encode a batch together; if that fails, each request alone, so one bad text
        fails only its own request."""
        if len(batch) > 1:
            try:
                vectors = self._encode([t for chunk, _ in batch for t in chunk])
            except Exception as exc:  # retried request by request below
                logger.warning(
                    "encoding %d requests together failed (%s); encoding each alone",
                    len(batch),
                    type(exc).__name__,
                )
            else:
                start = 0
                for chunk, fut in batch:
                    fut.set_result(vectors[start : start + len(chunk)])
                    start += len(chunk)
                return
        for chunk, fut in batch:
            try:
                fut.set_result(self._encode_alone(chunk))
            except Exception as exc:  # handed to the request's own thread, which raises it
                fut.set_exception(exc)

    def close(self) -> None:
        """Stop the worker after the texts already queued."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)


_T = TypeVar("_T")


@dataclass
class _Call(Generic[_T]):
    """A function to run on the encoder thread (:meth:`BatchingEncoder.submit`)."""

    fn: Callable[..., _T]
    args: tuple[Any, ...]
    future: Future[_T]
    context: contextvars.Context

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return  # the request went away while it waited (its client disconnected)
        try:
            self.future.set_result(self.context.run(self.fn, *self.args))
        except Exception as exc:  # handed to the caller, which raises it
            self.future.set_exception(exc)


_Job = tuple[list[str], "Future[np.ndarray]"] | _Call[Any]
"""What the encoder thread takes: texts to encode, or a call (:meth:`BatchingEncoder.submit`)."""


def runs_per_text(encoder: Any) -> bool:
    """Whether ``encoder``, or an encoder it wraps (``.inner``), embeds each text in a call
    of its own (``per_text = True``), so that batching texts together changes nothing."""
    for _ in range(8):  # wrappers: cleaning, caching; never this deep
        if encoder is None:
            return False
        if getattr(encoder, "per_text", None) is True:
            return True
        encoder = getattr(encoder, "inner", None)
    return False


def _now() -> float:
    import time

    return time.monotonic()


@dataclass
class UserState:
    """A user changed by events: running sums, extra seen items and the current group."""

    semantic_sum: np.ndarray
    behaviour_sum: np.ndarray
    weight: float
    items: set[int] = field(default_factory=set)
    n_events: int = 0
    group_id: int = -1
    confidence: float = 0.0
    vector: np.ndarray | None = None


class OnlineModel:
    """A fitted :class:`GroupDiscovery` plus an overlay of users changed by events.

    Parameters
    ----------
    model : GroupDiscovery
        Fitted (usually loaded from a model directory); treated as read-only.
    version : str
        Shown by ``/health``.
    events_seq : int
        The last event sequence number the model itself includes.
    """

    def __init__(self, model: GroupDiscovery, *, version: str = "", events_seq: int = 0) -> None:
        self.model = model
        self.version = version
        self.events_seq = int(events_seq)
        self._lock = threading.Lock()
        self.users: dict[str, UserState] = {}
        self.applied: set[int] = set()
        self.watermark = self.events_seq
        # the two blocks as fit chose them (the fitted state), never inferred from the fused
        # vectors
        state = model.state_
        self.first = state.text_block
        self.behaviour = state.behaviour
        self.semantic_dim = int(self.first.shape[1])
        seen = sp.csr_matrix(model.seen_)
        seen_t = sp.csr_matrix(seen.T)
        # an item's vectors: the mean of its consumers' (the model keeps no item vectors)
        self.item_semantic = l2_normalise(np.asarray(seen_t @ self.first))
        self.item_behaviour = l2_normalise(np.asarray(seen_t @ self.behaviour))
        self.user_weight = np.maximum(np.diff(seen.indptr), 1).astype(np.float32)
        self.confidences = model.assignments_["confidence"].to_numpy(dtype=np.float64)
        # the model's own ranking (blend_scores) unless it is the plain group popularity
        self.has_personal = (
            getattr(model, "personal_", None) is not None
            and float(getattr(model, "personal_weight_", 0.0)) > 0
        ) or getattr(model, "group_part_", "groups") != "groups"
        self.top: TopItems | None = None
        """Every known user's ranking, memory-mapped (:mod:`.topitems`); set by the state."""
        self._item_info: dict[int, tuple[str, str, str, str]] = {}
        groups = model.groups_
        self.labels = {
            int(g): str(lbl)
            for g, lbl in zip(groups.get("group_id", []), groups.get("label", []), strict=True)
        }

    # ------------------------------------------------------------------ vectors
    def fuse(self, semantic: np.ndarray, behaviour: np.ndarray) -> np.ndarray:
        """The model's fusion rule (:meth:`FittedState.fuse`) for rows of both blocks."""
        return self.model.state_.fuse(semantic, behaviour)

    def _membership(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's probability of every segment (the fit's confidence rule); shape
        (n, n_groups)."""
        centroids = self.model.centroids_
        if centroids.shape[0] == 0:
            return np.zeros((len(vectors), 0), dtype=np.float32)
        return softmax_confidence(vectors @ centroids.T)

    def _group_of(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self._membership(vectors)
        if proba.shape[1] == 0:
            return np.full(len(vectors), -1), np.zeros(len(vectors), dtype=np.float32)
        groups = proba.argmax(axis=1)
        return groups.astype(np.int64), proba[np.arange(len(groups)), groups]

    def _new_state(self, user_id: str) -> UserState:
        row = self.model.user_ids_.get(user_id)
        if row is None:
            return UserState(
                semantic_sum=np.zeros(self.semantic_dim, dtype=np.float32),
                behaviour_sum=np.zeros(self.behaviour.shape[1], dtype=np.float32),
                weight=0.0,
            )
        w = float(self.user_weight[row])
        return UserState(
            semantic_sum=self.first[row] * w,
            behaviour_sum=self.behaviour[row] * w,
            weight=w,
        )

    def text_block(self, text_vectors: np.ndarray) -> np.ndarray | None:
        """Encoder vectors of texts in the space of the fused vectors' first block.

        Through the model's alignment head when it has one; None when the texts cannot be
        placed there (then events count through their items only).
        """
        vectors = l2_normalise(np.atleast_2d(np.asarray(text_vectors, dtype=np.float32)))
        head = getattr(self.model, "head_", None)
        if head is not None:
            vectors = l2_normalise(np.asarray(head.transform(vectors), dtype=np.float32))
        return vectors if vectors.shape[1] == self.semantic_dim else None

    # ------------------------------------------------------------------- events
    def apply(
        self, events: Sequence[StoredEvent], text_vectors: dict[int, np.ndarray]
    ) -> dict[str, tuple[int, float]]:
        """Fold events into the overlay (each ``seq`` once); return users' new groups.

        Parameters
        ----------
        events : sequence of StoredEvent
        text_vectors : dict
            ``seq -> vector`` (shape (dim,)) for the events that have a text.
        """
        changed: dict[str, UserState] = {}
        with self._lock:
            for ev in events:
                if ev.seq in self.applied or ev.seq <= self.events_seq:
                    continue
                self.applied.add(ev.seq)
                state = self.users.get(ev.user_id) or self._new_state(ev.user_id)
                item = self.model.item_ids_.get(ev.item_id)
                vec = text_vectors.get(ev.seq)
                if vec is not None:
                    block = self.text_block(vec)
                    vec = None if block is None else block[0]
                if vec is not None:
                    state.semantic_sum = state.semantic_sum + np.asarray(vec, dtype=np.float32)
                elif item is not None:
                    state.semantic_sum = state.semantic_sum + self.item_semantic[item]
                if item is not None:
                    state.behaviour_sum = state.behaviour_sum + self.item_behaviour[item]
                    state.items.add(int(item))
                state.weight += 1.0
                state.n_events += 1
                self.users[ev.user_id] = state
                changed[ev.user_id] = state
            if changed:
                ids = list(changed)
                sem = np.stack([changed[u].semantic_sum for u in ids])
                beh = np.stack([changed[u].behaviour_sum for u in ids])
                fused = self.fuse(sem, beh)
                groups, conf = self._group_of(fused)
                for u, g, c, v in zip(ids, groups, conf, fused, strict=True):
                    changed[u].group_id = int(g)
                    changed[u].confidence = float(c)
                    changed[u].vector = v
        return {u: (s.group_id, s.confidence) for u, s in changed.items()}

    # -------------------------------------------------------------------- reads
    def user(self, user_id: str, n: int) -> dict[str, Any] | None:
        """Group, confidence and top-``n`` recommendations of a user; None if unknown."""
        state = self.users.get(user_id)
        row = self.model.user_ids_.get(user_id)
        if state is None and row is None:
            return None
        model = self.model
        if state is None:
            assert row is not None
            group = int(model.labels_[row])
            conf = float(self.confidences[row])
            membership = model.state_.membership[row]
            top = self.top
            if top is not None and (n <= top.k or top.k == len(model.item_ids_)):
                # ranked once for every user (the same ranking as below): two slices
                idx, values = top.row(row, n)
                return self._answer(
                    user_id, group, conf, True, 0, self._items_of(idx, values), membership
                )
            seen = model.seen_.indices[model.seen_.indptr[row] : model.seen_.indptr[row + 1]]
            if self.has_personal:
                # the model's own ranking: group popularity blended with its personal model
                scores = model.user_scores([user_id])
            else:  # the same ranking: the group part alone (fine groups or segment)
                scores = model.state_.group_part(np.array([row]))
        else:
            group, conf = state.group_id, state.confidence
            membership = (
                self._membership(np.atleast_2d(state.vector))[0]
                if state.vector is not None
                else np.zeros(model.centroids_.shape[0], dtype=np.float32)
            )
            cols = set(state.items)
            if row is not None:
                start, stop = model.seen_.indptr[row], model.seen_.indptr[row + 1]
                cols.update(model.seen_.indices[start:stop].tolist())
            seen = np.array(sorted(cols), dtype=np.int64)
            blocks = None
            if state.vector is not None:
                blocks = (state.semantic_sum[None, :], state.behaviour_sum[None, :])
            scores = self._online_scores(group, seen, blocks)
        return self._answer(
            user_id,
            group,
            conf,
            row is not None,
            0 if state is None else state.n_events,
            self.top_items(scores, n, seen),
            membership,
        )

    def _answer(
        self,
        user_id: str,
        group: int,
        conf: float,
        known: bool,
        n_events: int,
        recommendations: list[dict[str, Any]],
        membership: np.ndarray,
    ) -> dict[str, Any]:
        """The ``/users`` answer; ``membership`` (one probability per segment) gives the
        ``runner_up`` segment, so a user between two segments is visible as such."""
        order = np.argsort(-membership, kind="stable")
        second = int(order[1]) if len(order) > 1 and group >= 0 else -1
        return {
            "user_id": user_id,
            "group_id": int(group),
            "label": self.labels.get(int(group), "noise"),
            "confidence": round(float(conf), 4),
            "membership": [round(float(p), 4) for p in membership],
            "runner_up": second,
            "runner_up_confidence": round(float(membership[second]), 4) if second >= 0 else 0.0,
            "known_to_model": known,
            "n_events": n_events,
            "recommendations": recommendations,
        }

    def _online_scores(
        self,
        group: int,
        seen: np.ndarray,
        blocks: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Scores of a user whose group or items changed, ranked as the model ranks users.

        ``seen`` holds the user's item indices, ``blocks`` their text and behaviour rows
        (the fine groups place them; without, the segment's popularity is the group part).
        """
        model = self.model
        groups = np.array([group])
        part = None
        if blocks is not None:
            part = model.state_.vector_group_part(blocks[0], blocks[1], groups)
        scores = model.blend_scores(
            groups, _row_matrix(seen.tolist(), len(model.item_ids_)), group_part=part
        )
        return np.asarray(scores, dtype=np.float32)

    def top_items(
        self, scores: np.ndarray, n: int, exclude: np.ndarray | None
    ) -> list[dict[str, Any]]:
        """The ``n`` best items of one row of scores, item indices ``exclude`` left out."""
        row = np.array(np.atleast_2d(scores)[:1], dtype=np.float32)
        if exclude is not None and len(exclude):
            row[0, exclude] = -np.inf
        idx, values = top_n(row, n)
        return self._items_of(idx[0], values[0])

    def _items_of(self, idx: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
        """Recommendations from item indices and scores, best first (-1 ends the list)."""
        out = []
        for rank, (i, v) in enumerate(zip(idx.tolist(), values.tolist(), strict=True), start=1):
            if i < 0:
                break
            item, title, name, source = self._item_info.get(i) or self._describe(i)
            out.append(
                {
                    "rank": rank,
                    "item_id": item,
                    "title": title,
                    "name": name,
                    "name_source": source,
                    "score": float(v),
                }
            )
        return out

    def _describe(self, i: int) -> tuple[str, str, str, str]:
        """Id, title, name and name source of item ``i`` (looked up once per item)."""
        item = str(self.model.item_ids_.ids[i])
        title = self.model.item_titles_.get(item, "")
        # name: the title, else the name derived from the item's reviews (name_source says which)
        name_of = getattr(getattr(self.model, "state_", None), "item_name", None)
        name, source = name_of(item) if name_of is not None else (title, "title" if title else "")
        info = (item, title, name, source)
        self._item_info[i] = info
        return info

    def assign(
        self, texts: Sequence[str], items: Sequence[str], n: int
    ) -> tuple[dict[str, Any], list[str]]:
        """Place one new user known by texts (and optionally items) into a group.

        Texts only: the model's cold-start rule (:meth:`GroupDiscovery.new_user_scores`),
        each text voting; the probabilities and item scores are averaged over the texts.
        Texts and known items: the fused vector, built like an event-updated user's, and
        the nearest centroid; the items are left out of the recommendations.

        Returns
        -------
        result : dict
        unknown_items : list of str
            Items the model does not know (ignored).
        """
        model = self.model
        known = [model.item_ids_.get(i) for i in items]
        rows = sorted({int(r) for r in known if r is not None})
        unknown = [i for i, r in zip(items, known, strict=True) if r is None]
        seen = np.array(rows, dtype=np.int64)
        if rows:
            vectors = self.text_block(np.asarray(model.encoder.encode(list(texts)), np.float32))
            sem = self.item_semantic[rows].sum(axis=0)
            if vectors is not None:
                sem = sem + vectors.sum(axis=0)
            beh = self.item_behaviour[rows].sum(axis=0)
            fused = self.fuse(sem[None, :], beh[None, :])
            groups, conf = self._group_of(fused)
            group, confidence = int(groups[0]), float(conf[0])
            scores = self._online_scores(group, seen, (sem[None, :], beh[None, :]))
        else:
            proba, text_scores = model.new_user_scores(list(texts))
            if proba.shape[1]:
                mean = proba.mean(axis=0)
                group = int(mean.argmax())
                confidence = float(mean[group])
            else:
                group, confidence = -1, 0.0
            scores = text_scores.mean(axis=0, keepdims=True)
        result = {
            "group_id": group,
            "label": self.labels.get(group, "noise"),
            "confidence": round(confidence, 4),
            "recommendations": self.top_items(scores, n, seen if rows else None),
        }
        return result, unknown

    @property
    def n_online_users(self) -> int:
        return len(self.users)


def _row_matrix(cols: Sequence[int], n_items: int) -> sp.csr_matrix:
    """A (1, n_items) 0/1 matrix with ones at ``cols``."""
    cols = list(cols)
    return sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), ([0] * len(cols), cols)), shape=(1, n_items)
    )
