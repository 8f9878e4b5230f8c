"""Fixtures of the service tests: a small fitted model, real uvicorn servers, PostgreSQL.

Servers are real processes (``python -m usergroups serve``) on a free loopback port, so
the tests see what a client sees, and can kill one with SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from service_support import (
    N_PLANTED,
    Server,
    _pg_bindir,
    free_port,
    load_base,
    model_config,
    newcomers,
)

from usergroups import GroupDiscovery
from usergroups.testing import PlantedData, make_planted


@pytest.fixture(scope="session")
def planted() -> PlantedData:
    return make_planted(n_users=160, n_groups=N_PLANTED, n_items=80, random_state=0)


@pytest.fixture(scope="session")
def base_files(planted: PlantedData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model's training data as files (what refits read), without the newcomers."""
    out = tmp_path_factory.mktemp("base-data")
    ds = planted.dataset
    left_out = set(newcomers(planted))
    inter = ds.interactions[~ds.interactions["user_id"].isin(left_out)]
    texts = ds.texts[~ds.texts["user_id"].isin(left_out)]
    paths = {
        "interactions": out / "interactions.parquet",
        "texts": out / "texts.parquet",
        "items": out / "items.parquet",
    }
    inter.to_parquet(paths["interactions"], index=False)
    texts.to_parquet(paths["texts"], index=False)
    assert ds.items is not None
    ds.items[["item_id", "title", "categories", "description"]].to_parquet(
        paths["items"], index=False
    )
    return paths


@pytest.fixture(scope="session")
def fitted_model_dir(base_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model fitted on the base data, saved once; tests copy it before changing it."""
    out = tmp_path_factory.mktemp("model") / "model"
    GroupDiscovery(model_config()).fit(load_base(base_files)).save(out)
    return out


@pytest.fixture
def model_dir(fitted_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the model (its event store lands beside it)."""
    target = tmp_path / "model"
    shutil.copytree(fitted_model_dir, target)
    return target


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """``start_server(model_dir, settings={...})`` -> a started :class:`Server`."""
    servers: list[Server] = []

    def start(model_dir: Path, settings: dict[str, Any] | None = None) -> Server:
        server = Server(model_dir, settings or {}, tmp_path).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(
    fitted_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per module for read-mostly tests (its own model copy and store)."""
    work = tmp_path_factory.mktemp("shared-server")
    model = work / "model"
    shutil.copytree(fitted_model_dir, model)
    server = Server(model, {"limits": {"rate_per_s": 10_000.0, "burst": 10_000}}, work).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server in a temporary directory; yields its base URL."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (the serve extra)")
    bindir = _pg_bindir()
    # .ci/run installs PostgreSQL: under CI=true a missing server fails, never skips (issue 13)
    missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if bindir is None:
        missing("PostgreSQL binaries are not installed (apt-get install postgresql)")
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="usergroups-pg-"))
    if os.geteuid() == 0:
        # the server refuses to run as root: run it as the postgres user
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            missing("running as root and there is no 'postgres' user to run the server as")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        runuser = shutil.which("runuser")
        run_as = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-c"]
    data, sock, log = root / "data", root / "sock", root / "server.log"
    port = free_port()

    def run(args: list[str]) -> None:
        cmd = [*run_as, *args] if run_as[:1] != ["su"] else [*run_as, " ".join(args)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    try:
        run(["mkdir", "-p", str(sock)])
        run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"])
        run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {sock} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc}: {detail.decode(errors='replace')}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        try:
            run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the test server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"
