"""Issue 21: every docstring example in ``src/`` runs, so the examples stay true.

One test per module. A module whose import needs an optional extra that is not installed is
skipped with the name of what is missing; an example that cannot run here (a network, a
model download, a server) is marked ``# doctest: +SKIP`` where it is written.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import usergroups

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


# whole fits in their examples (more than ~3 s each): run by `make test`, not the fast loop
SLOW = {"usergroups.fitted", "usergroups.refit", "usergroups.report.benchmark"}
SLOW.add("usergroups.report.writer")


def _modules() -> list[object]:
    """Every module of the package whose source holds a docstring example."""
    params: list[object] = []
    for info in pkgutil.walk_packages(usergroups.__path__, prefix="usergroups."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec is not None else None
        if origin is None or ">>> " not in Path(origin).read_text(encoding="utf-8"):
            continue
        marks = [pytest.mark.slow] if info.name in SLOW else []
        params.append(pytest.param(info.name, marks=marks, id=info.name))
    return params


def test_the_examples_are_found() -> None:
    # the walk above must see the modules known to carry examples
    names = {p.values[0] for p in _modules()}  # type: ignore[attr-defined]
    assert {"usergroups.linalg", "usergroups.clustering.base", "usergroups.pipeline"} <= names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra (pyspark, fastapi, torch, ...)
        pytest.skip(f"{name} needs {exc.name or exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} holds '>>> ' but doctest finds no example in it"
    out: list[str] = []
    for test in tests:
        runner.run(test, out=out.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(out)
