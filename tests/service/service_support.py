"""Helpers of the service tests: the test model's config, a server process, assertions."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from usergroups import DiscoveryConfig
from usergroups.testing import PlantedData

API_KEY = "test-api-key-0123456789abcdef"
ADMIN_KEY = "test-admin-key-0123456789abcdef"
N_PLANTED = 4
"""Planted groups; the model is fitted without the last one, which events bring in."""


def model_config() -> DiscoveryConfig:
    return DiscoveryConfig().with_overrides(
        {
            "embedding.model": "hashing:64",
            "embedding.use_cache": False,
            "clustering.n_groups": N_PLANTED - 1,
            "clustering.n_init": 4,
        }
    )


def newcomers(planted: PlantedData) -> list[str]:
    """Users of the last planted group: left out of the model, sent later as events."""
    return sorted(u for u, g in planted.labels.items() if g == N_PLANTED - 1)


def load_base(base_files: dict[str, Path]) -> Any:
    from usergroups.datasets import load_files

    return load_files(
        interactions=base_files["interactions"],
        texts=base_files["texts"],
        items=base_files["items"],
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``usergroups serve`` in a subprocess on a free loopback port."""

    def __init__(self, model_dir: Path, settings: dict[str, Any], workdir: Path) -> None:
        self.model_dir = model_dir
        self.settings = settings
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"server-{self.port}.log"

    def _write_settings(self) -> Path:
        import tomli_w

        path = self.workdir / f"settings-{self.port}.toml"
        path.write_text(tomli_w.dumps(self.settings))
        return path

    def start(self, timeout: float = 60.0) -> Server:
        env = {
            **os.environ,
            "USERGROUPS_API_KEYS": f"tests:{API_KEY}",
            "USERGROUPS_ADMIN_KEYS": f"ops:{ADMIN_KEY}",
            "PYTHONUNBUFFERED": "1",
            # the users' ranking (issue 16) is cached per test, not in the home folder
            "USERGROUPS_CACHE": str(self.workdir / "cache"),
        }
        env.pop("USERGROUPS_EVENTS_URL", None)
        cmd = [
            sys.executable,
            "-m",
            "usergroups",
            "serve",
            str(self.model_dir),
            "--port",
            str(self.port),
            "--settings",
            str(self._write_settings()),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        # the workers follow their supervisor (SIGTERM on its death) but may still hold the
        # port for a moment; a restart must not be answered by one of them
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"port {self.port} still answers 30 s after kill -9:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


def refit_settings(base_files: dict[str, Path]) -> dict[str, Any]:
    return {"refit": {k: str(v) for k, v in base_files.items()}}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, with no trace or path in it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    text = json.dumps(body)
    assert "Traceback" not in text and "/work/" not in text and ".py" not in text, text
    return dict(body["error"])


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None
