"""Two service instances sharing one PostgreSQL event store."""

from __future__ import annotations

import time

import pytest
from service_support import Server

pytestmark = pytest.mark.timeout(300)


def test_two_instances_share_events_and_idempotency(
    model_dir, start_server, postgres_url: str
) -> None:
    settings = {"events": {"url": postgres_url, "sync_interval_s": 0.2}}
    a: Server = start_server(model_dir, settings)
    b: Server = start_server(model_dir, settings)
    event = {"event_id": "pg-1", "user_id": "pg-user", "item_id": "i5", "text": "drum snare"}
    with a.client() as ca, b.client() as cb:
        assert ca.post("/events", json=event).json()["stored"] == 1
        # the retry reaches the other instance: still stored once
        assert cb.post("/events", json=event).json()["duplicates"] == 1
        assert ca.get("/health").json()["events"]["stored"] == 1
        # b picks up a's event from the shared store
        deadline = time.monotonic() + 30
        found = cb.get("/users/pg-user")
        while found.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
            found = cb.get("/users/pg-user")
        assert found.status_code == 200
        assert found.json()["n_events"] == 1
        assert found.json()["group_id"] == ca.get("/users/pg-user").json()["group_id"]
    a.kill9()
    a.start()
    with a.client() as ca:
        assert ca.get("/users/pg-user").json()["n_events"] == 1
