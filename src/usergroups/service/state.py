"""Everything a running service holds: the model, the event store, the refit job.

Routes call one method here each; this module holds the logic, :mod:`.app` only HTTP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usergroups.data import Dataset
from usergroups.embedding.checks import InputError, check_text
from usergroups.embedding.checks import first_bad_char as _bad_char
from usergroups.errors import UserGroupsError
from usergroups.pipeline import GroupDiscovery
from usergroups.service.events import (
    AppendResult,
    EventStore,
    NewEvent,
    StoredEvent,
    events_to_frame,
    open_event_store,
)
from usergroups.service.metrics import ServiceMetrics
from usergroups.service.online import BatchingEncoder, OnlineModel
from usergroups.service.settings import LimitSettings, ServiceSettings, default_events_url
from usergroups.service.topitems import open_top_items
from usergroups.service.workers import available_cpus

__all__ = [
    "InputError",
    "RefitBusyError",
    "RefitUnavailableError",
    "ServiceState",
    "check_id",
    "check_text",
    "model_version",
]

logger = logging.getLogger(__name__)

_REPLAY_CHUNK = 2000
_SYNC_LAG = 1000
"""Seqs re-read behind the highest applied one: PostgreSQL may commit them out of order."""


class RefitBusyError(UserGroupsError, RuntimeError):
    """A refit is already running."""


class RefitUnavailableError(UserGroupsError, RuntimeError):
    """The service has no data source configured to refit on."""


_UNREADABLE_IDS = frozenset({".", ".."})
"""User ids that clients and proxies rewrite as path segments before sending them."""


def check_id(value: str, field: str, *, path_segment: bool = False) -> str:
    """``value`` if it is a usable id; :class:`InputError` naming ``field`` if not.

    Ids hold no control characters and no lone surrogates. With ``path_segment`` (user
    ids, read back through ``GET /users/{user_id}``) they also hold no ``/`` and are not
    ``.`` or ``..``: such ids could be stored but never read back.

    Examples
    --------
    >>> check_id("A2IBPI20UZIR0U", "user_id", path_segment=True)
    'A2IBPI20UZIR0U'
    >>> try:
    ...     check_id("a/b", "user_id", path_segment=True)
    ... except InputError as exc:
    ...     print(exc.field, "|", str(exc).split(",")[0])
    user_id | user_id 'a/b' holds '/'
    """
    bad = _bad_char(value)
    if bad is not None:
        pos, what = bad
        raise InputError(
            field,
            f"{field} holds {what} at character {pos}; ids are printable text without "
            "control characters",
        )
    if path_segment:
        if "/" in value:
            raise InputError(
                field,
                f"{field} {value!r} holds '/', which GET /users/{{user_id}} cannot read back; "
                "use ids without '/' (e.g. replace it with '_')",
            )
        if value in _UNREADABLE_IDS:
            raise InputError(
                field,
                f"{field} {value!r} is a path step that clients rewrite before sending, so "
                "GET /users/{user_id} cannot read it back; use another id",
            )
    return value


_FUTURE_S = 86_400.0
"""How far in the future (clock skew) an event's timestamp may be, in seconds."""


def _check_event(event: NewEvent, prefix: str, limits: LimitSettings) -> None:
    check_id(event.event_id, f"{prefix}event_id")
    check_id(event.user_id, f"{prefix}user_id", path_segment=True)
    check_id(event.item_id, f"{prefix}item_id")
    if event.text is not None:
        check_text(event.text, f"{prefix}text")
    if event.rating is not None and not limits.min_rating <= event.rating <= limits.max_rating:
        raise InputError(
            f"{prefix}rating",
            f"{prefix}rating {event.rating:g} is outside {limits.min_rating:g} to "
            f"{limits.max_rating:g}; send a rating on the data's scale (the range is "
            "limits.min_rating and limits.max_rating in the settings)",
        )
    if event.timestamp is not None:
        check_timestamp(event.timestamp, f"{prefix}timestamp")


def check_timestamp(value: float, field: str, *, now: float | None = None) -> float:
    """``value`` if it is unix seconds from 1970 to a day from ``now``; InputError if not.

    Examples
    --------
    >>> check_timestamp(1_700_000_000.0, "timestamp")
    1700000000.0
    >>> try:
    ...     check_timestamp(1_700_000_000_000.0, "timestamp", now=1_800_000_000.0)
    ... except InputError as exc:
    ...     print(str(exc).split(" (")[0])
    timestamp 1.7e+12 is not unix seconds between 1970 and a day from now
    """
    latest = (time.time() if now is None else now) + _FUTURE_S
    if not 0.0 <= value <= latest:
        hint = " (milliseconds? divide by 1000)" if latest < value <= latest * 1000 else ""
        raise InputError(
            field,
            f"{field} {value:g} is not unix seconds between 1970 and a day from now{hint}; "
            "send seconds since 1970-01-01 UTC, or leave it out",
        )
    return value


def model_version(model_dir: Path) -> str:
    """A short hash of the model's config and versions files (changes with every fit)."""
    h = hashlib.sha256()
    for name in ("versions.json", "config.json", "metrics.json"):
        path = model_dir / name
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


class ServiceState:
    """The model being served, its online overlay, the event store and the refit job.

    Parameters
    ----------
    model_dir : str or Path
    settings : ServiceSettings
    n_workers : int, default 1
        Worker processes serving the same model and store (:mod:`.workers`). With more
        than one, every answer that reads the users first applies the events other
        workers stored (:meth:`refresh`).
    worker : int, default 0
        This worker's number (0 to ``n_workers - 1``), shown by ``/health``.
    shared_limits : tuple of SharedBuckets, optional
        The per-key and per-address rate-limit buckets all workers share.
    """

    def __init__(
        self,
        model_dir: str | Path,
        settings: ServiceSettings,
        *,
        n_workers: int = 1,
        worker: int = 0,
        shared_limits: tuple[Any, Any] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.settings = settings
        self.n_workers = int(n_workers)
        self.worker = int(worker)
        self.shared_limits = shared_limits
        self._store_version: int | None = None
        self.metrics = ServiceMetrics()
        self.events_url = settings.events.url or default_events_url(self.model_dir)
        self.store: EventStore | None = None
        self._online: OnlineModel | None = None
        self._swap = threading.RLock()
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.refit_status: dict[str, Any] = {"state": "idle"}
        self._refit_thread: threading.Thread | None = None
        self.started_at = time.time()

    # -------------------------------------------------------------- lifecycle
    def open(self) -> ServiceState:
        """Load the model, open the store, replay the events the model does not include."""
        # the model first: a missing or broken model directory must leave no store behind
        model = GroupDiscovery.load(self.model_dir)
        self.store = open_event_store(self.events_url)
        if self.n_workers > 1:
            self._store_version = self._data_version()
        self._online = self._load_online(model)
        interval = self.settings.events.sync_interval_s
        if interval > 0:
            self._sync_thread = threading.Thread(
                target=self._sync_loop, args=(interval,), name="usergroups-sync", daemon=True
            )
            self._sync_thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=5)
        if self._refit_thread is not None:
            self._refit_thread.join(timeout=1)
        if self._online is not None:
            self._online.model.encoder.close()
        if self.store is not None:
            self.store.close()

    @property
    def online(self) -> OnlineModel:
        if self._online is None:
            raise RuntimeError("the service state is not open; call open() first")
        return self._online

    def _make_encoder(self, model: GroupDiscovery) -> BatchingEncoder:
        """The model's own encoder (backend, adapters: as its config says), batched.

        Without the disk cache: texts sent to the API would grow it without bound.
        """
        original = model.config
        model.config = original.with_overrides({"embedding.use_cache": False})
        try:
            model.encoder = None
            inner = model._get_encoder()
        finally:
            model.config = original
        return BatchingEncoder(
            inner,
            max_batch=self.settings.assign_batch_size,
            max_wait_s=self.settings.assign_batch_wait_ms / 1000.0,
            # a per-text encoder runs whole requests (issue 25): one thread per core this
            # process has to itself, so that scoring overlaps the model where it can
            n_threads=max(1, min(2, available_cpus() // max(self.n_workers, 1))),
        )

    def _load_online(self, model: GroupDiscovery | None = None) -> OnlineModel:
        if model is None:
            model = GroupDiscovery.load(self.model_dir)
        encoder = self._make_encoder(model)
        model.encoder = encoder
        refit_info = (model.metrics_ or {}).get("refit") or {}
        online = OnlineModel(
            model,
            version=model_version(self.model_dir),
            events_seq=int(refit_info.get("events_seq", 0)),
        )
        online.top = open_top_items(
            model, self.model_dir, online.version, self.settings.limits.max_n
        )
        n = self._catch_up(online)
        self.metrics.set_model(online.version)
        self.metrics.online_users.set(online.n_online_users)
        logger.info(
            "model %s loaded from %s: %d users, %d groups; %d event(s) replayed from %s",
            online.version,
            self.model_dir,
            len(model.user_ids_),
            len(model.groups_),
            n,
            self._store_name(),
        )
        return online

    def _store_name(self) -> str:
        from usergroups.service.events import _redact

        return _redact(self.events_url)

    def _catch_up(self, online: OnlineModel) -> int:
        """Apply stored events the overlay has not seen; return how many."""
        assert self.store is not None
        lag = int(getattr(self.store, "commit_lag", _SYNC_LAG))
        floor = max(online.events_seq, online.watermark - lag)
        total = 0
        while True:
            batch = self.store.events_since(floor, limit=_REPLAY_CHUNK)
            if not batch:
                return total
            fresh = [e for e in batch if e.seq not in online.applied]
            if fresh:
                vectors = self._encode_events(fresh, online)
                with self._swap:
                    online.apply(fresh, vectors)
                total += len(fresh)
            floor = batch[-1].seq
            online.watermark = max(online.watermark, floor)
            if len(batch) < _REPLAY_CHUNK:
                return total

    def _encode_events(
        self, events: Sequence[StoredEvent | NewEvent], online: OnlineModel
    ) -> dict[int, np.ndarray]:
        """Vectors of the events' texts, keyed by ``seq`` (stored) or position (new)."""
        with_text = [i for i, e in enumerate(events) if e.text and e.text.strip()]
        if not with_text:
            return {}
        vectors = online.model.encoder.encode([str(events[i].text) for i in with_text])
        key = [getattr(events[i], "seq", i) for i in with_text]
        return dict(zip(key, vectors, strict=True))

    def _data_version(self) -> int | None:
        version = getattr(self.store, "data_version", None)
        return int(version()) if version is not None else None

    def needs_refresh(self) -> bool:
        """Whether another worker stored events since this one last looked (cheap)."""
        if self.n_workers <= 1 or self._store_version is None:
            return False
        return self._data_version() != self._store_version

    def refresh(self) -> int:
        """Apply the events other workers stored since the last look; return how many.

        With one worker, nothing to do. With several, each calls this before an answer
        that reads users (``/users``, ``/events``, ``/health``), so every answer includes
        every event stored before the request arrived, whichever worker stored it. The
        check is SQLite's ``PRAGMA data_version`` (no disk read); events are read only
        when it changed.
        """
        if not self.needs_refresh():
            return 0
        with self._swap:
            # read first: a commit during the catch-up changes it again, so it is not missed
            self._store_version = self._data_version()
            n = self._catch_up(self.online)
        if n:
            self.metrics.online_users.set(self.online.n_online_users)
        return n

    def _sync_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                n = self._catch_up(self.online)
                if n:
                    logger.info("applied %d event(s) from other instances", n)
                    self.metrics.online_users.set(self.online.n_online_users)
            except UserGroupsError as exc:
                logger.warning("event sync failed: %s", exc)

    # ------------------------------------------------------------------ assign
    def assign(
        self, texts: Sequence[str], items: Sequence[str], n: int
    ) -> tuple[dict[str, Any], list[str]]:
        """Check a new user's texts and items, then place them (:meth:`OnlineModel.assign`).

        Raises
        ------
        InputError
            If a text or an item id is unusable (:func:`check_text`, :func:`check_id`);
            nothing is encoded then.
        """
        for i, text in enumerate(texts):
            check_text(text, f"texts[{i}]")
        for i, item in enumerate(items):
            check_id(item, f"items[{i}]")
        return self.online.assign(texts, items, n)

    # ------------------------------------------------------------------ events
    def ingest(
        self, events: Sequence[NewEvent], *, single: bool = False
    ) -> tuple[list[AppendResult], dict[str, tuple[int, float]]]:
        """Check events, store them durably, then update their users.

        Parameters
        ----------
        events : sequence of NewEvent
        single : bool, default False
            The request sent one event, not a list: errors name ``user_id`` rather than
            ``[0].user_id``.

        Returns
        -------
        results : list of AppendResult
        changed : dict
            ``user_id -> (group_id, confidence)`` of the users the events moved.

        Raises
        ------
        InputError
            If an id or a text is unusable; nothing of the batch is stored then.
        """
        assert self.store is not None
        for i, event in enumerate(events):
            _check_event(event, "" if single else f"[{i}].", self.settings.limits)
        self.refresh()  # the users' events stored by other workers count first
        # encode first: a text that cannot be encoded must not be stored as applied
        by_position = self._encode_events(events, self.online)
        with self._swap:
            results = self.store.append(events)
            stored = [(i, r) for i, r in enumerate(results) if r.status == "stored"]
            records = [
                StoredEvent(
                    seq=r.seq,
                    event_id=events[i].event_id,
                    user_id=events[i].user_id,
                    item_id=events[i].item_id,
                    rating=events[i].rating,
                    text=events[i].text,
                    timestamp=events[i].timestamp,
                    received_at=time.time(),
                )
                for i, r in stored
            ]
            vectors = {r.seq: by_position[i] for i, r in stored if i in by_position}
            online = self.online
            changed = online.apply(records, vectors)
        n_new = len(stored)
        self.metrics.events.labels(result="stored").inc(n_new)
        self.metrics.events.labels(result="duplicate").inc(len(results) - n_new)
        for group, _ in changed.values():
            self.metrics.assignments.labels(group_id=str(group), source="event").inc()
        self.metrics.online_users.set(online.n_online_users)
        return results, changed

    # ------------------------------------------------------------------- refit
    def start_refit(self) -> dict[str, Any]:
        """Start a refit in the background; raise if one runs or none can."""
        if not self.settings.refit.configured:
            raise RefitUnavailableError(
                "refit has no data to refit on: set [refit] dataset = NAME or "
                "interactions/texts = FILES in the settings file"
            )
        with self._swap:
            if self.refit_status.get("state") == "running":
                raise RefitBusyError(
                    f"a refit started at {self.refit_status.get('started')} is still running; "
                    "poll GET /refit"
                )
            self.refit_status = {"state": "running", "started": _iso(time.time())}
            self._refit_thread = threading.Thread(
                target=self._refit_worker, name="usergroups-refit", daemon=True
            )
            self._refit_thread.start()
            return dict(self.refit_status)

    def _refit_worker(self) -> None:
        from usergroups.refit import refit
        from usergroups.report.refit_dir import save_refit

        t0 = time.perf_counter()
        try:
            assert self.store is not None
            upto = self.store.last_seq()
            events = events_to_frame(self.store.events_upto(upto))
            dataset = load_refit_data(self.settings)
            new, report = refit(
                self.online.model,
                dataset,
                events,
                events_seq=upto,
                min_overlap=self.settings.refit.min_overlap,
            )
            # the model, refit.json, the map and report.html replace the old ones together
            save_refit(new, report, self.model_dir)
            online = self._load_online()
            with self._swap:
                previous, self._online = self._online, online
                self._catch_up(online)
            if previous is not None:
                previous.model.encoder.close()
            self.metrics.refits.labels(result="ok").inc()
            self.refit_status = {
                "state": "done",
                "started": self.refit_status.get("started"),
                "seconds": round(time.perf_counter() - t0, 2),
                "model_version": online.version,
                "report": report.to_dict(),
            }
        except Exception as exc:  # the job reports its failure; the old model keeps serving
            logger.exception("refit failed")
            self.metrics.refits.labels(result="error").inc()
            message = str(exc) if isinstance(exc, UserGroupsError) else type(exc).__name__
            self.refit_status = {
                "state": "failed",
                "started": self.refit_status.get("started"),
                "error": message,
            }

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, Any]:
        self.refresh()
        online = self.online
        model = online.model
        assert self.store is not None
        return {
            "status": "ok",
            "model": {
                "version": online.version,
                "created": _created(self.model_dir),
                "encoder": str((model.metrics_ or {}).get("encoder", "")),
                "n_users": len(model.user_ids_),
                "n_items": len(model.item_ids_),
                "n_groups": len(model.groups_),
                "events_seq": online.events_seq,
            },
            "events": {
                "store": self.events_url.split(":", 1)[0],
                "stored": self.store.count(),
                "applied": len(online.applied),
                "online_users": online.n_online_users,
            },
            "refit": self.refit_status.get("state", "idle"),
            "workers": {"count": self.n_workers, "this": self.worker},
            "uptime_s": round(time.time() - self.started_at, 1),
        }


def load_refit_data(settings: ServiceSettings) -> Dataset:
    """The dataset ``[refit]`` names (a registered dataset or files); a
    :class:`~usergroups.errors.ConfigError` when it names none."""
    return settings.refit.load()


def _created(model_dir: Path) -> str | None:
    try:
        return str(json.loads((model_dir / "versions.json").read_text()).get("created"))
    except (OSError, ValueError):
        return None


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
