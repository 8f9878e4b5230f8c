"""The HTTP service: ``usergroups serve runs/x`` (FastAPI on uvicorn).

Needs the ``serve`` extra: ``pip install 'usergroups[serve]'``. See ``docs/service.md``.

- :mod:`.settings`: the settings file, environment variables, limits;
- :mod:`.events`: the durable, idempotent event stores (SQLite WAL, PostgreSQL);
- :mod:`.online`: the loaded model plus the users changed by events;
- :mod:`.state`: what a running service holds (model, store, refit job);
- :mod:`.app`: the routes, the error shape, request ids, metrics.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from typing import Any

from usergroups.errors import ConfigError
from usergroups.service.settings import ServiceSettings, load_settings

__all__ = ["ServiceSettings", "load_settings", "run_server"]


def run_server(model_dir: str, settings: ServiceSettings) -> None:
    """Load the model and serve it with uvicorn until interrupted.

    The port is taken before the model is loaded, so a port in use is reported at once.
    ``settings.workers`` processes serve it (:func:`~.workers.resolve_workers`: "auto" is
    one per core, and one where the settings need a single process); one log line says
    how many and why.

    Raises
    ------
    ConfigError
        The port is in use or cannot be bound, the settings are incomplete (no keys), or
        they ask for several workers where one process is needed.
    ModelDirectoryError
        ``model_dir`` is not a usergroups model directory; nothing is created then.
    """
    from usergroups._deps import require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from usergroups.service.app import configure_logging, create_app
    from usergroups.service.state import ServiceState
    from usergroups.service.workers import resolve_workers, serve_workers

    configure_logging(settings.log_level)
    n_workers, why = resolve_workers(settings)
    if n_workers > 1:
        # several workers: each accepts on its own socket of the port (SO_REUSEPORT), so
        # the kernel spreads connections evenly; this process creates them all, after
        # finding the port free, and listens at once, so no other server can join them
        socks = _bind_workers(settings.host, settings.port, n_workers)
        try:
            _prepare(model_dir, settings)
            with contextlib.suppress(KeyboardInterrupt):
                serve_workers(model_dir, settings, socks, n_workers, why)
        finally:
            for s in socks:
                s.close()
        return
    sock = _bind(settings.host, settings.port)
    try:
        state = ServiceState(model_dir, settings).open()
        try:
            app = create_app(state)
            _listen(sock, settings.host, settings.port)
        except BaseException:
            state.close()
            raise
        server = uvicorn.Server(_uvicorn_config(app, settings))
        logging.getLogger(__name__).info(
            "serving on http://%s:%d with one process (%s; Ctrl+C to stop)",
            _url_host(settings.host),
            settings.port,
            why,
        )
        # Ctrl+C comes back as KeyboardInterrupt after a graceful shutdown: a normal stop
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])  # the lifespan closes the state
    finally:
        sock.close()


def _uvicorn_config(app: Any, settings: ServiceSettings) -> Any:
    """uvicorn's settings for one server process (every worker uses the same)."""
    import uvicorn

    from usergroups.service.http import protocol_class

    limits = settings.limits
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        log_level=settings.log_level,
        loop="auto",
        # uvicorn's own protocol ("auto": httptools, else h11) with limits on the URL and
        # headers, and our JSON error shape for what the parser refuses (issue 22)
        http=protocol_class(limits.max_url_bytes, limits.max_header_bytes),
        h11_max_incomplete_event_size=limits.max_url_bytes + limits.max_header_bytes,
        timeout_graceful_shutdown=10,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; the wrong-key
        # and rate limits are per address, so only configured proxies are believed
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
    )


def _prepare(model_dir: str, settings: ServiceSettings) -> None:
    """What several workers would each fail on, checked once before they start.

    The model directory (nothing is created when it is not a model), the keys, the event
    store (created here, so workers do not race to create it) and the users' ranking
    (computed here once, then mapped by every worker).
    """
    from pathlib import Path

    from usergroups.pipeline import GroupDiscovery
    from usergroups.service.app import check_keys
    from usergroups.service.events import open_event_store
    from usergroups.service.settings import default_events_url
    from usergroups.service.state import model_version
    from usergroups.service.topitems import open_top_items

    # the model directory first, as one process does: a wrong folder is named before the
    # settings' other problems
    model = GroupDiscovery.load(model_dir)
    check_keys(settings)
    open_event_store(settings.events.url or default_events_url(model_dir)).close()
    path = Path(model_dir)
    open_top_items(model, path, model_version(path), settings.limits.max_n)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); ConfigError if it cannot be.

    With ``reuse_port`` (SO_REUSEPORT) several sockets bind the same port, one per worker,
    and the kernel spreads connections across them; only :func:`_bind_workers` uses it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as uvicorn does: a port left in TIME_WAIT by a stopped server can be bound again
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _port_error(exc, host, port) from exc
    sock.set_inheritable(True)
    return sock


def _bind_workers(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` listening sockets sharing ``host:port`` (SO_REUSEPORT), one per worker.

    SO_REUSEPORT lets any process of the same user join a group of sockets on a port, so
    a second server started with several workers would share ours and take half of our
    connections (issue 22). The port is therefore first bound without SO_REUSEPORT, which
    fails while any server (ours included) listens on it; then the sockets are bound and
    listen at once, so a later server's check fails on them. Connections that arrive
    while the workers load the model wait in the sockets' queues.

    Raises
    ------
    ConfigError
        The port is in use (by any server, whatever its number of workers).
    """
    probe = _bind(host, port)
    port = int(probe.getsockname()[1])  # the one chosen when ``port`` is 0
    probe.close()
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = _bind(host, port, reuse_port=True)
            socks.append(sock)
            _listen(sock, host, port)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _listen(sock: socket.socket, host: str, port: int) -> None:
    try:
        sock.listen(2048)
    except OSError as exc:
        raise _port_error(exc, host, port) from exc


def _port_error(exc: OSError, host: str, port: int) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"port {port} on {host} is in use (another server?); pass another --port, or stop "
            "what is using it"
        )
    return ConfigError(
        f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --host or --port"
    )
