"""The HTTP service: ``usergroups serve runs/x`` (FastAPI on uvicorn).

Needs the ``serve`` extra: ``pip install 'usergroups[serve]'``. See ``docs/service.md``.

- :mod:`.settings`: the settings file, environment variables, limits;
- :mod:`.events`: the durable, idempotent event stores (SQLite WAL, PostgreSQL);
- :mod:`.online`: the loaded model plus the users changed by events;
- :mod:`.state`: what a running service holds (model, store, refit job);
- :mod:`.app`: the routes, the error shape, request ids, metrics.
"""

from __future__ import annotations

from usergroups.service.settings import ServiceSettings, load_settings

__all__ = ["ServiceSettings", "load_settings", "run_server"]


def run_server(model_dir: str, settings: ServiceSettings) -> None:
    """Load the model and serve it with uvicorn until interrupted (one process)."""
    from usergroups._deps import require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from usergroups.service.app import configure_logging, create_app
    from usergroups.service.state import ServiceState

    configure_logging(settings.log_level)
    state = ServiceState(model_dir, settings).open()
    app = create_app(state)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        log_level=settings.log_level,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )
