"""Several worker processes on one port, /users from the memory-mapped ranking, batched
/assign (issue 16): every worker answers as the model does, and as the others do."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from service_support import API_KEY, Server, assert_error

from usergroups import GroupDiscovery
from usergroups.errors import ConfigError
from usergroups.service.online import OnlineModel
from usergroups.service.settings import ServiceSettings, load_settings
from usergroups.service.state import model_version
from usergroups.service.topitems import open_top_items
from usergroups.service.workers import resolve_workers

pytestmark = pytest.mark.timeout(300)


def _users(model_dir: Path) -> list[str]:
    return pd.read_parquet(model_dir / "assignments.parquet")["user_id"].astype(str).tolist()


def _live(model_dir: Path) -> OnlineModel:
    """The model's own ranking, computed per request (no memory-mapped arrays)."""
    return OnlineModel(GroupDiscovery.load(model_dir), version=model_version(model_dir))


def _by_worker(server: Server, path: str, tries: int = 200) -> dict[int, list[Any]]:
    """``GET path`` over fresh connections until both workers answered; answers by worker."""
    seen: dict[int, list[Any]] = {}
    for _ in range(tries):
        with server.client() as c:  # one connection: /health and the request hit one worker
            worker = c.get("/health").json()["workers"]["this"]
            response = c.get(path)
            assert response.status_code == 200, response.text
            seen.setdefault(worker, []).append(response.json())
        if len(seen) == 2 and min(len(v) for v in seen.values()) >= 2:
            break
    assert len(seen) == 2, f"one worker answered every connection: {list(seen)}"
    return seen


def test_two_workers_answer_users_as_the_model_does(model_dir, start_server) -> None:
    server = start_server(model_dir, {"workers": 2})
    with server.client() as c:
        assert c.get("/health").json()["workers"]["count"] == 2
    live = _live(model_dir)
    users = _users(model_dir)[:6]
    for user in users:
        expected = json.loads(json.dumps(live.user(user, 7)))
        for worker, answers in _by_worker(server, f"/users/{user}?n=7", tries=40).items():
            assert all(a == expected for a in answers), (worker, answers[0], expected)
    # /metrics from either worker counts both workers' requests
    with server.client() as c:
        text = c.get("/metrics").text
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("usergroups_http_requests_total") and "/users/{user_id}" in line
    )
    assert served >= 4 * len(users)


def test_the_memory_mapped_ranking_gives_the_same_answers(
    fitted_model_dir, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("USERGROUPS_CACHE", str(tmp_path / "cache"))
    live = _live(fitted_model_dir)
    cached = _live(fitted_model_dir)
    top = open_top_items(cached.model, fitted_model_dir, cached.version, 100)
    assert isinstance(top.items, np.memmap) and isinstance(top.scores, np.memmap)
    cached.top = top
    n_items = len(cached.model.item_ids_)
    for user in _users(fitted_model_dir):
        for n in (1, 10, n_items, n_items + 5):
            assert cached.user(user, n) == live.user(user, n), (user, n)
    # opened again: read back from the cache, not ranked again
    again = open_top_items(cached.model, fitted_model_dir, cached.version, 100)
    assert np.array_equal(again.items, top.items)
    assert np.array_equal(again.scores, top.scores)


def test_events_stored_by_one_worker_are_in_every_workers_answer(model_dir, start_server):
    server = start_server(model_dir, {"workers": 2})
    item_ids = pd.read_parquet(model_dir / "items.parquet")["item_id"].astype(str).tolist()
    known = _users(model_dir)[0]
    events = [
        {"event_id": f"w{i}", "user_id": user, "item_id": item_ids[i]}
        for i, user in enumerate(["newcomer", "newcomer", known, "newcomer"])
    ]
    for event in events:  # a fresh connection each: the events land on both workers
        with server.client() as c:
            assert c.post("/events", json=event).status_code == 200
    for user, n_events in (("newcomer", 3), (known, 1)):
        answers = [a for v in _by_worker(server, f"/users/{user}").values() for a in v]
        assert all(a == answers[0] for a in answers), answers
        assert answers[0]["n_events"] == n_events
        got = [r["item_id"] for r in answers[0]["recommendations"]]
        assert not set(got) & {e["item_id"] for e in events if e["user_id"] == user}


def test_the_rate_limit_is_one_for_all_workers(model_dir, start_server) -> None:
    server = start_server(model_dir, {"workers": 2, "limits": {"burst": 6, "rate_per_s": 0.01}})
    user = _users(model_dir)[0]
    statuses = []
    for _ in range(14):
        with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}) as c:
            statuses.append(c.get(f"/users/{user}").status_code)
    assert statuses.count(200) == 6, statuses
    with server.client() as c:
        assert_error(c.get(f"/users/{user}"), 429, "rate_limited")


def test_concurrent_assigns_each_get_their_own_answer(model_dir, start_server) -> None:
    # a long batching window: the concurrent texts are encoded together
    server = start_server(model_dir, {"workers": 1, "assign_batch_wait_ms": 300.0})
    texts = [
        "bright acoustic guitar strings",
        "a heavy drum kit with cymbals",
        "warm synth pads and keys",
        "microphone cables and a mixer",
        "violin rosin and a bow",
        "bass amp for small gigs",
    ]

    def assign(text: str) -> dict[str, Any]:
        with server.client() as c:
            response = c.post("/assign", json={"texts": [text], "n": 5})
            assert response.status_code == 200, response.text
            return dict(response.json())

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        answers = list(pool.map(assign, texts))
    live = _live(model_dir)
    for text, answer in zip(texts, answers, strict=True):
        expected, _ = live.assign([text], [], 5)
        assert answer["group_id"] == expected["group_id"], text
        assert answer["confidence"] == pytest.approx(expected["confidence"], abs=1e-4)
        got, want = answer["recommendations"], expected["recommendations"]
        # a text encoded in a batch may differ from itself alone in the last float bits
        assert [r["item_id"] for r in got] == [r["item_id"] for r in want], text
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], rel=1e-5)
    assert len({json.dumps(a["recommendations"]) for a in answers}) > 1


def test_auto_is_one_process_where_a_single_writer_is_needed() -> None:
    refit = {"refit": {"dataset": "ml-100k"}}
    n, why = resolve_workers(ServiceSettings.model_validate(refit), cpus=8)
    assert n == 1 and "refit" in why
    assert resolve_workers(ServiceSettings(), cpus=8)[0] == 4
    assert resolve_workers(ServiceSettings(), cpus=1)[0] == 1
    with pytest.raises(ConfigError, match=r"workers = 2 cannot .*refit.*set workers = 1"):
        resolve_workers(ServiceSettings.model_validate({**refit, "workers": 2}))
    postgres = {"events": {"url": "postgresql://db/x"}, "workers": 3}
    with pytest.raises(ConfigError, match="sync_interval_s"):
        resolve_workers(ServiceSettings.model_validate(postgres))
    polled = {"events": {"url": "postgresql://db/x", "sync_interval_s": 1.0}, "workers": 3}
    assert resolve_workers(ServiceSettings.model_validate(polled))[0] == 3
    with pytest.raises(ConfigError, match="workers is 'zero'"):
        load_settings(env={}, overrides={"workers": "zero"})


def test_serve_refuses_workers_with_refit_before_loading(model_dir, tmp_path) -> None:
    settings = tmp_path / "serve.toml"
    settings.write_text("workers = 2\n[refit]\ndataset = 'ml-100k'\n")
    done = subprocess.run(
        [sys.executable, "-m", "usergroups", "serve", str(model_dir), "--settings", str(settings)],
        env={"USERGROUPS_API_KEYS": f"t:{API_KEY}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "workers = 2 cannot serve these settings" in done.stderr
    assert not Path(f"{model_dir}.events.sqlite3").exists()
