"""Several server processes on one port: how many to start, and the supervisor.

The supervisor finds the port free and creates ``n`` listening sockets of it
(``SO_REUSEPORT``, one per worker, so the kernel spreads connections evenly across them:
with one shared socket the idle worker that wakes first would take most of them; see
``usergroups.service._bind_workers`` for why no other server can join them). It starts
``n`` worker processes (``spawn``: each imports and loads the model itself, no state is
copied from a forked parent), hands each its socket, waits until every one has loaded the
model, then lets them all accept. Each worker is a whole
service (model, encoder, event store connection) plus what they must share to behave as
one server:

- the events: before an answer that reads users, a worker applies the events the others
  stored (:meth:`ServiceState.refresh`, cheap when there are none);
- the rate limits: one token bucket per key and per client address for all workers
  (:class:`~usergroups.service.security.SharedBuckets`);
- the metrics: ``GET /metrics`` from any worker counts every worker's requests
  (prometheus_client's multiprocess mode).

Modes that need one process refuse several (:func:`resolve_workers`). A worker that dies
stops the service (exit 1) rather than leave the others to answer alone or restart one
from a model directory that may have changed since.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
from typing import Any

from usergroups.errors import ConfigError, UserGroupsError
from usergroups.service.settings import MAX_AUTO_WORKERS, ServiceSettings

__all__ = ["WorkerError", "available_cpus", "resolve_workers", "serve_workers"]

logger = logging.getLogger("usergroups.service")

_STOP_TIMEOUT_S = 15.0
"""How long stopped workers get to finish their requests before they are killed."""


class WorkerError(UserGroupsError, RuntimeError):
    """A worker process failed to start or died while serving."""


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def single_process_reason(settings: ServiceSettings) -> tuple[str, str] | None:
    """Why these settings need one process, and what to change: None when they do not."""
    if settings.refit.configured:
        return (
            "POST /refit is configured ([refit]): a refit swaps the model inside one process "
            "and other workers would go on answering from the old one",
            "leave [refit] out and refit with `usergroups refit MODEL_DIR ...`, then restart",
        )
    url = settings.events.url or ""
    if url.startswith(("postgresql:", "postgres:")) and settings.events.sync_interval_s <= 0:
        return (
            "the PostgreSQL event store is not polled (events.sync_interval_s = 0), so "
            "workers would not see each other's events",
            "set events.sync_interval_s (e.g. 1.0), as for several instances",
        )
    return None


def resolve_workers(settings: ServiceSettings, *, cpus: int | None = None) -> tuple[int, str]:
    """How many worker processes to start, and why (for the log).

    ``workers = "auto"``: one per available core, at most
    :data:`~usergroups.service.settings.MAX_AUTO_WORKERS` (each holds its own encoder),
    and 1 when the settings need one process (:func:`single_process_reason`).

    Raises
    ------
    ConfigError
        ``workers`` asks for more than one process where the settings need one.

    Examples
    --------
    >>> from usergroups.service.settings import ServiceSettings
    >>> resolve_workers(ServiceSettings(workers="auto"), cpus=2)
    (2, 'auto: 2 CPU cores available (at most 4)')
    >>> resolve_workers(ServiceSettings(workers=1))
    (1, 'workers = 1')
    """
    single = single_process_reason(settings)
    if settings.workers == "auto":
        if single is not None:
            return 1, f"auto: one process, because {single[0]}"
        cpus = available_cpus() if cpus is None else cpus
        n = max(1, min(cpus, MAX_AUTO_WORKERS))
        return n, f"auto: {cpus} CPU core{'s' if cpus != 1 else ''} available (at most " + (
            f"{MAX_AUTO_WORKERS})"
        )
    n = int(settings.workers)
    if n > 1 and single is not None:
        raise ConfigError(
            f"workers = {n} cannot serve these settings: {single[0]}; set workers = 1, or "
            f"{single[1]}"
        )
    return n, f"workers = {n}"


# ----------------------------------------------------------------------- the parent
def serve_workers(
    model_dir: str, settings: ServiceSettings, socks: list[socket.socket], n: int, why: str
) -> None:
    """Run ``n`` workers, one on each listening socket of ``socks``, until SIGINT or SIGTERM
    (or one dies).

    Returns after SIGINT (Ctrl+C) once every worker has stopped; after SIGTERM the
    signal is raised again with its default action, so the exit status says so (143).

    Raises
    ------
    UserGroupsError
        A worker could not start (the error it raised, e.g. ModelDirectoryError).
    WorkerError
        A worker died while serving; the others are stopped first.
    """
    from usergroups.service import _url_host
    from usergroups.service.metrics import MULTIPROC_ENV
    from usergroups.service.security import SharedBuckets

    ctx = multiprocessing.get_context("spawn")
    port = int(socks[0].getsockname()[1])  # the one bound, also when settings.port is 0
    metrics_dir = tempfile.mkdtemp(prefix="usergroups-metrics-")
    previous_env = os.environ.get(MULTIPROC_ENV)
    # read by each worker's prometheus_client at import: they write counts there
    os.environ[MULTIPROC_ENV] = metrics_dir
    shared = (SharedBuckets(context=ctx), SharedBuckets(context=ctx))
    received: list[int] = []
    old_handlers = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    workers: list[tuple[Any, Any]] = []
    try:
        for index in range(n):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                # the socket is passed to the spawned child as a file descriptor
                args=(model_dir, settings, socks[index], index, n, shared, child_end, os.getpid()),
                name=f"usergroups-worker-{index}",
            )
            proc.start()
            child_end.close()
            workers.append((proc, parent_end))
        for index, (proc, conn) in enumerate(workers):
            message = _wait_for(proc, conn, received)
            if message is None:
                return  # stopped while starting
            if message[0] != "ready":
                raise _rebuild(index, message)
        for _, conn in workers:
            conn.send("go")
        # each worker holds its own copy of its socket now: this process's copies would keep
        # the port listening, queueing connections nobody accepts, once the workers stop
        for sock in socks:
            sock.close()
        logger.info(
            "serving on http://%s:%d with %d worker processes (%s; Ctrl+C to stop)",
            _url_host(settings.host),
            port,
            n,
            why,
        )
        _supervise(workers, received)
    finally:
        _stop(workers)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if previous_env is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous_env
        shutil.rmtree(metrics_dir, ignore_errors=True)
        # release the shared locks' semaphores now, not at exit (no resource-tracker warning)
        workers.clear()
        del shared
        gc.collect()
    if received and received[-1] == signal.SIGTERM:
        signal.raise_signal(signal.SIGTERM)  # the default action again: exit status 143


def _wait_for(proc: Any, conn: Any, received: list[int]) -> tuple[Any, ...] | None:
    """The worker's first message ("ready" or "error"); None when a signal came first."""
    while not received:
        ready = multiprocessing.connection.wait([conn, proc.sentinel], timeout=0.5)
        if conn in ready:
            try:
                return tuple(conn.recv())
            except EOFError:
                pass
        if ready:
            proc.join(timeout=5)
            return ("error", "", f"exited with status {proc.exitcode} while starting")
    return None


def _rebuild(index: int, message: tuple[Any, ...]) -> UserGroupsError:
    """The error a worker reported, as the same class when it is one of ours."""
    import usergroups.errors as errors

    _, name, text = message
    cls = getattr(errors, str(name), None)
    if isinstance(cls, type) and issubclass(cls, UserGroupsError):
        return cls(text)
    return WorkerError(f"worker {index} could not start: {text}")


def _supervise(workers: list[tuple[Any, Any]], received: list[int]) -> None:
    """Wait for a signal; raise WorkerError when a worker dies meanwhile."""
    sentinels = {proc.sentinel: (i, proc) for i, (proc, _) in enumerate(workers)}
    while not received:
        dead = multiprocessing.connection.wait(list(sentinels), timeout=0.5)
        if dead and not received:
            index, proc = sentinels[dead[0]]
            proc.join(timeout=5)
            raise WorkerError(
                f"worker {index} (pid {proc.pid}) exited with status {proc.exitcode} while "
                "serving; all workers were stopped: see the log above, then start again"
            )


def _stop(workers: list[tuple[Any, Any]]) -> None:
    """SIGTERM every worker (a graceful stop), then SIGKILL those still running."""
    for proc, conn in workers:
        if proc.is_alive():
            proc.terminate()
        conn.close()
    for proc, _ in workers:
        proc.join(timeout=_STOP_TIMEOUT_S)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        _mark_dead(proc.pid)


def _mark_dead(pid: int | None) -> None:
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    with contextlib.suppress(ImportError, OSError):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# ------------------------------------------------------------------------ a worker
def _worker_main(
    model_dir: str,
    settings: ServiceSettings,
    sock: socket.socket,
    index: int,
    n_workers: int,
    shared: tuple[Any, Any],
    conn: Any,
    parent_pid: int,
) -> None:  # pragma: no cover - runs in a child process (tests see it through HTTP)
    _die_with_parent(parent_pid)
    # Ctrl+C reaches the supervisor alone, which stops the workers once, gracefully
    os.setpgrp()
    if not (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        # the encoders take every core by default: n workers would each start that many
        # threads and fight over the cores; a user's own setting is kept
        os.environ["OMP_NUM_THREADS"] = str(max(1, available_cpus() // n_workers))
    from usergroups._deps import require

    uvicorn = require("uvicorn", "serve")
    from usergroups.service import _uvicorn_config
    from usergroups.service.app import configure_logging, create_app
    from usergroups.service.state import ServiceState

    configure_logging(settings.log_level)
    try:
        state = ServiceState(
            model_dir, settings, n_workers=n_workers, worker=index, shared_limits=shared
        ).open()
        try:
            app = create_app(state)
        except BaseException:
            state.close()
            raise
    except UserGroupsError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        sys.exit(1)
    except Exception as exc:
        logger.exception("worker %d could not start", index)
        conn.send(("error", "", f"{type(exc).__name__}: {exc}"))
        sys.exit(1)
    conn.send(("ready",))
    try:
        go = conn.recv()
    except EOFError:
        go = None
    if go != "go":
        state.close()
        sys.exit(0)
    server = uvicorn.Server(_uvicorn_config(app, settings))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])  # the lifespan closes the state


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - child process
    """SIGTERM this worker when the supervisor dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the line above
        sys.exit(0)
