"""Modules imported on first use, for the paths that answer one question (issue 25).

``usergroups assign`` and ``recommend`` answer with numpy alone; scipy.sparse (with
numpy.f2py, which scipy's array-api-compat pulls in) costs about 0.1 s of each call. Modules
the answer path shares with the fit bind ``sp`` to a :class:`LazyModule`, so scipy loads
the first time a function actually uses it::

    if TYPE_CHECKING:
        import scipy.sparse as sp
    else:
        sp = lazy_module("scipy.sparse")

Examples
--------
>>> json = lazy_module("json")
>>> json.dumps([1])
'[1]'
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LazyModule", "lazy_module"]


class LazyModule:
    """Stands for the module ``name``; imports it at the first attribute looked up."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        # only called for names this object lacks, i.e. the module's own
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def lazy_module(name: str) -> Any:
    """A :class:`LazyModule` for ``name`` (typed ``Any``: declare the real module under
    ``TYPE_CHECKING`` for mypy)."""
    return LazyModule(name)
