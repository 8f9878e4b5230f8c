"""Shared test fixtures, and the markers a test gets from its folder, fixtures and helpers."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FunctionType, ModuleType

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TESTS = Path(__file__).resolve().parent

# Markers are set here, not by hand, so that `make test-fast` (which leaves them out) cannot
# miss a test that starts a server or a JVM: by folder, by the fixtures a test uses (directly
# or through other fixtures), and by the helpers it calls. Only `slow` is written by hand.
FOLDER_MARKERS = {
    "integration": "integration",
    "service": "service",
    "spark": "spark",
    "hostile": "hostile",
}
FIXTURE_MARKERS = {
    "postgres_server": "service",  # a PostgreSQL server in a temporary directory
    "start_server": "service",  # real uvicorn processes
    "shared_server": "service",
    "spark": "spark",  # a local[2] SparkSession (a JVM)
}
HELPER_MARKERS = {"usergroups.testing.browser": "browser"}  # open_page starts Chromium


# The ONNX files the default encoder backend builds are content-addressed and written
# atomically: one shared folder for the session instead of one export per test's cache.
if not os.environ.get("USERGROUPS_MODELS"):
    from usergroups.embedding import default_cache_dir

    os.environ["USERGROUPS_MODELS"] = str(default_cache_dir() / "models")


@pytest.fixture(autouse=True)
def _own_fit_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own fit cache: a result stored by one test (or a monkeypatched
    step) must never be reused by another."""
    monkeypatch.setenv("USERGROUPS_FITS", str(tmp_path_factory.mktemp("fits")))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The directory of the shared real datasets: ``$USERGROUPS_DATA``, else ../shared/datasets.

    Tests that need a dataset folder skip when it is not there (see the datasets README).
    """
    return Path(os.environ.get("USERGROUPS_DATA", str(SHARED_DATA))).expanduser()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in sorted(_implied_markers(item)):
            if item.get_closest_marker(name) is None:
                item.add_marker(name)


def _implied_markers(item: pytest.Item) -> set[str]:
    names: set[str] = set()
    try:
        folder = item.path.resolve().relative_to(TESTS).parts[0]
    except ValueError:  # a test file outside tests/ (given on the command line)
        folder = ""
    if folder in FOLDER_MARKERS:
        names.add(FOLDER_MARKERS[folder])
    names.update(
        FIXTURE_MARKERS[f] for f in getattr(item, "fixturenames", ()) if f in FIXTURE_MARKERS
    )
    function = getattr(item, "function", None)
    if isinstance(function, FunctionType):
        # the module of each global the test body names, e.g. open_page -> browser
        for global_name in function.__code__.co_names:
            module = getattr(function.__globals__.get(global_name), "__module__", None)
            if module in HELPER_MARKERS:
                names.add(HELPER_MARKERS[module])
    return names


# the real encoder loads from the installed package; never reach for a model hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def fresh_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Python code in a new interpreter that sees the same ``sys.path``: what a command
    imports is only visible there, this process having long imported everything."""

    def run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def bench_script() -> Callable[[str], ModuleType]:
    """Load one of ``bench/``'s scripts (not a package) as a module by its name, e.g.
    ``bench_script("scale")``, to test the helpers it measures with."""

    def load(name: str) -> ModuleType:
        path = TESTS.parent / "bench" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
