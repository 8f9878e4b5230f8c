"""Import optional dependencies with a clear message when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from usergroups.errors import MissingDependencyError


def require(module: str, extra: str, *, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    Examples
    --------
    >>> np = require("numpy", "core")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{name} is needed for this feature but is not installed; "
            f"install with: pip install 'usergroups[{extra}]'"
        ) from exc


def require_installed(module: str, extra: str, *, package: str | None = None) -> None:
    """Like :func:`require`, without importing: for work done in a child process.

    Examples
    --------
    >>> require_installed("numpy", "core")
    """
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None:
        name = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{name} is needed for this feature but is not installed; "
            f"install with: pip install 'usergroups[{extra}]'"
        )
