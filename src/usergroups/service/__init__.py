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

from usergroups.errors import ConfigError
from usergroups.service.settings import ServiceSettings, load_settings

__all__ = ["ServiceSettings", "load_settings", "run_server"]


def run_server(model_dir: str, settings: ServiceSettings) -> None:
    """Load the model and serve it with uvicorn until interrupted (one process).

    The port is taken before the model is loaded, so a port in use is reported at once.

    Raises
    ------
    ConfigError
        The port is in use or cannot be bound, or the settings are incomplete (no keys).
    ModelDirectoryError
        ``model_dir`` is not a usergroups model directory; nothing is created then.
    """
    from usergroups._deps import require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from usergroups.service.app import configure_logging, create_app
    from usergroups.service.state import ServiceState

    configure_logging(settings.log_level)
    sock = _bind(settings.host, settings.port)
    try:
        state = ServiceState(model_dir, settings).open()
        try:
            app = create_app(state)
            _listen(sock, settings.host, settings.port)
        except BaseException:
            state.close()
            raise
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                log_config=None,
                access_log=False,
                log_level=settings.log_level,
                loop="auto",
                http="auto",
                timeout_graceful_shutdown=10,
                # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; the wrong-key
                # and rate limits are per address, so only configured proxies are believed
                proxy_headers=bool(settings.trusted_proxies),
                forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
            )
        )
        logging.getLogger(__name__).info(
            "serving on http://%s:%d (Ctrl+C to stop)", _url_host(settings.host), settings.port
        )
        # Ctrl+C comes back as KeyboardInterrupt after a graceful shutdown: a normal stop
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])  # the lifespan closes the state
    finally:
        sock.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); ConfigError if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as uvicorn does: a port left in TIME_WAIT by a stopped server can be bound again
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _port_error(exc, host, port) from exc
    sock.set_inheritable(True)
    return sock


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
