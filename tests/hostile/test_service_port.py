"""Hostile cases against a real server on loopback: a second server on a busy port (issue 22).

Servers are real processes (``python -m usergroups serve``), started with the helpers of
the service tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_support import Server, model_config

from usergroups import GroupDiscovery
from usergroups.testing import make_planted

OTHER_KEY = "other-key-0123456789abcdefghijklmn"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small models with different groups, so /health tells which one answered."""
    out = tmp_path_factory.mktemp("models")
    dirs = []
    for name, n_groups in (("a", 3), ("b", 2)):
        planted = make_planted(n_users=80, n_groups=3, n_items=40, random_state=1)
        config = model_config().with_overrides({"clustering.n_groups": n_groups})
        GroupDiscovery(config).fit(planted.dataset).save(out / name)
        dirs.append(out / name)
    return dirs[0], dirs[1]


def _second_serve(model_dir: Path, port: int, workers: str, tmp_path: Path) -> Any:
    env = {
        **{k: v for k, v in os.environ.items() if k != "USERGROUPS_EVENTS_URL"},
        "USERGROUPS_API_KEYS": f"other:{OTHER_KEY}",
        "USERGROUPS_CACHE": str(tmp_path / "cache2"),
    }
    cmd = [sys.executable, "-m", "usergroups", "serve", str(model_dir), "--port", str(port)]
    cmd += ["--workers", workers]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("first_workers", "second_workers"), [(2, "2"), (2, "auto"), (2, "1"), (1, "2")]
)
def test_issue22_second_server_on_a_busy_port_exits_1(
    two_models, start_server, tmp_path, first_workers, second_workers
) -> None:
    """Issue 22: with SO_REUSEPORT a second `serve --workers 2` shared the first's port."""
    a, b = two_models
    first = start_server(a, {"workers": first_workers})
    with first.client() as client:
        before = client.get("/health").json()["model"]
    result = _second_serve(b, first.port, second_workers, tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"port {first.port}" in result.stderr and "in use" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # the first server alone answers, with its model and its keys, on every connection
    for _ in range(20):
        with first.client() as client:
            assert client.get("/health").json()["model"] == before
            assert client.get("/groups").status_code == 200
    assert first.proc is not None and first.proc.poll() is None


def test_issue22_the_port_is_free_again_after_a_refused_second_server(
    two_models, start_server, tmp_path
) -> None:
    """The refused server leaves nothing behind: the first keeps serving, and after it
    stops the port can be served again."""
    a, b = two_models
    first = start_server(a, {"workers": 2})
    assert _second_serve(b, first.port, "2", tmp_path).returncode == 1
    first.stop()
    again = Server(b, {"workers": 2}, tmp_path)
    again.port, again.url = first.port, first.url
    again.start()
    try:
        with again.client() as client:
            assert client.get("/health").json()["model"]["n_groups"] == 2
    finally:
        again.stop()
    shutil.rmtree(tmp_path / "cache2", ignore_errors=True)
