"""Hostile cases against a real server on loopback: the same text gets the same answer
whoever else is assigning at the same time (issue 22).

The model uses the real bundled encoder with the default int8 ONNX backend, whose dynamic
quantisation made a text's vector depend on the other texts of its batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("onnxruntime", reason="the fast extra is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_support import Server

from usergroups import DiscoveryConfig, GroupDiscovery
from usergroups.testing import make_planted

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

N_CLIENTS = 12
N_ROUNDS = 20  # the issue's 12 clients x 20 rounds
N_ITEMS = 5
# very different token lengths, so that a batch pads most of them
TEXTS = [
    "ok",
    "Great strings.",
    "The tuner clips on and holds its pitch well, even on stage.",
    "Too quiet.",
    "I bought this cable for my bass amp and after two weeks it crackles whenever the plug "
    "moves; the jack is loose and the shielding is thin. Returned it and got a better one.",
    "Nice stand",
    "Bright, clear tone from these strings for the first month, then they went dull and "
    "started to rust near the bridge. For the price I expected them to last longer than "
    "that, but they were easy to put on and stayed in tune through long rehearsals. "
    "I would buy them again for recording, not for gigging every night in a humid bar.",
    "Works as described, no complaints.",
    "capo",
    "My daughter loves this ukulele; it stays in tune and the case is sturdy.",
    "The pedal hums when the power supply is shared with my other effects, so I use a "
    "battery now and it is quiet.",
    "Five stars!!!",
]


@pytest.fixture(scope="module")
def int8_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model fitted with the default encoder, int8 ONNX (what `discover` uses)."""
    out = tmp_path_factory.mktemp("int8-model") / "model"
    planted = make_planted(n_users=90, n_groups=3, n_items=40, random_state=3)
    config = DiscoveryConfig().with_overrides(
        {
            "embedding.backend": "onnx-int8",
            "embedding.cache_dir": str(out.parent / "cache"),
            "clustering.n_groups": 3,
            "clustering.n_init": 2,
        }
    )
    model = GroupDiscovery(config).fit(planted.dataset)
    assert "onnx-int8" in model.metrics_["encoder"]
    model.save(out)
    return out


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def start(model_dir: Path, settings: dict[str, Any]) -> Server:
        server = Server(model_dir, settings, tmp_path).start(timeout=180.0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _answer(server: Server, text: str) -> dict[str, Any]:
    with server.client() as client:
        response = client.post("/assign", json={"texts": [text], "n": N_ITEMS})
        assert response.status_code == 200, response.text
        body = response.json()
    return {
        "group_id": body["group_id"],
        "confidence": body["confidence"],
        "items": [r["item_id"] for r in body["recommendations"]],
    }


def _same(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    assert got["group_id"] == want["group_id"], what
    assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-4), what
    assert got["items"] == want["items"], what


def test_issue22_concurrent_assigns_equal_the_answer_alone_and_the_library(
    int8_model_dir, start_server
) -> None:
    """Issue 22: 12 clients assigning at once got other items and confidences (by up to
    0.13) than the same text sent alone: int8 scales were shared by the batch."""
    # a long batching window, so that the concurrent texts are encoded together
    server = start_server(int8_model_dir, {"workers": 1, "assign_batch_wait_ms": 100.0})
    alone = {text: _answer(server, text) for text in TEXTS}
    with ThreadPoolExecutor(max_workers=N_CLIENTS) as pool:
        for round_ in range(N_ROUNDS):
            # each round pairs every text with other neighbours in the batch
            shift = round_ % len(TEXTS)
            texts = TEXTS[shift:] + TEXTS[:shift]
            answers = list(pool.map(lambda t: _answer(server, t), texts))
            for text, got in zip(texts, answers, strict=True):
                _same(got, alone[text], f"round {round_}: {text!r}")
    library = GroupDiscovery.load(int8_model_dir).assign(TEXTS, n=N_ITEMS)
    for row in library.itertuples():
        want = {"group_id": row.group_id, "confidence": row.confidence, "items": row.items}
        _same(alone[row.text], want, f"GroupDiscovery.assign: {row.text!r}")


def test_issue22_the_cli_assigns_as_the_service_does(int8_model_dir, start_server) -> None:
    server = start_server(int8_model_dir, {"workers": 1})
    for text in (TEXTS[4], TEXTS[0]):
        command = [sys.executable, "-m", "usergroups", "assign", str(int8_model_dir)]
        out = subprocess.run(
            [*command, "--text", text, "-n", str(N_ITEMS), "--format", "json"],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ},
        )
        assert out.returncode == 0, out.stderr
        row = json.loads(out.stdout)
        row = row[0] if isinstance(row, list) else row
        want = {"group_id": row["group_id"], "confidence": row["confidence"], "items": row["items"]}
        _same(_answer(server, text), want, f"usergroups assign: {text!r}")
