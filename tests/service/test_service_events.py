"""Events: durable before the answer, applied once, survive kill -9, update users online."""

from __future__ import annotations

import numpy as np
import pytest
from service_support import assert_error, newcomers

from usergroups import GroupDiscovery
from usergroups.testing import PlantedData

pytestmark = pytest.mark.timeout(300)


def _event(i: int, user: str, item: str, **extra: object) -> dict[str, object]:
    return {"event_id": f"ev-{i}", "user_id": user, "item_id": item, **extra}


def test_events_survive_kill_9_and_restart(model_dir, start_server, planted) -> None:
    users = newcomers(planted)[:5]
    items = ["i3", "i7", "i11", "i15"]
    server = start_server(model_dir)
    sent = [_event(k, u, it) for k, (u, it) in enumerate((u, it) for u in users for it in items)]
    with server.client() as c:
        r = c.post("/events", json=sent)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == len(sent)
        before = {u: c.get(f"/users/{u}").json() for u in users}
    server.kill9()  # no shutdown hook runs: only what was committed survives
    server.start()
    with server.client() as c:
        health = c.get("/health").json()
        assert health["events"]["stored"] == len(sent)
        assert health["events"]["applied"] == len(sent)
        after = {u: c.get(f"/users/{u}").json() for u in users}
    assert after == before
    for u in users:
        assert after[u]["n_events"] == len(items)
        assert after[u]["known_to_model"] is False


def test_duplicate_event_ids_are_applied_once(model_dir, start_server) -> None:
    model = GroupDiscovery.load(model_dir)
    user = str(model.user_ids_.ids[3])
    unseen = [
        str(i) for j, i in enumerate(model.item_ids_.ids) if j not in set(model.seen_[3].indices)
    ][:2]
    server = start_server(model_dir)
    with server.client() as c:
        first = c.post("/events", json=_event(1, user, unseen[0], rating=5.0)).json()
        assert first["stored"] == 1 and first["duplicates"] == 0
        again = c.post("/events", json=_event(1, user, unseen[0], rating=5.0)).json()
        assert again["stored"] == 0 and again["duplicates"] == 1
        assert again["events"][0]["seq"] == first["events"][0]["seq"]
        batch = c.post(
            "/events", json=[_event(2, user, unseen[1]), _event(2, user, unseen[1])]
        ).json()
        assert [e["status"] for e in batch["events"]] == ["stored", "duplicate"]
        state = c.get(f"/users/{user}").json()
        assert state["n_events"] == 2
        assert c.get("/health").json()["events"]["stored"] == 2
        # the same id with other content is refused, and nothing of its batch is stored
        conflict = c.post("/events", json=[_event(3, user, "i1"), _event(1, user, "i2")])
        assert_error(conflict, 409, "conflict")
        assert c.get("/health").json()["events"]["stored"] == 2
    server.kill9()
    server.start()
    with server.client() as c:
        assert c.get(f"/users/{user}").json()["n_events"] == 2


def test_events_move_a_user_and_exclude_new_items(
    model_dir, start_server, planted: PlantedData
) -> None:
    model = GroupDiscovery.load(model_dir)
    # a brand-new user known only by events from group 0's members' favourite items
    members = np.flatnonzero(model.labels_ == 0)
    counts = np.asarray(model.seen_[members].sum(axis=0)).ravel()
    favourites = [str(model.item_ids_.ids[i]) for i in np.argsort(-counts)[:6]]
    rng = np.random.default_rng(0)
    planted_group = int(
        np.bincount([planted.labels[str(model.user_ids_.ids[m])] for m in members]).argmax()
    )
    text = planted.text_for_group(planted_group, rng)
    server = start_server(model_dir)
    with server.client() as c:
        r = c.post(
            "/events",
            json=[
                _event(k, "fresh-user", item, text=text if k == 0 else None)
                for k, item in enumerate(favourites)
            ],
        ).json()
        assert r["users"] == [
            {"user_id": "fresh-user", "group_id": 0, "confidence": r["users"][0]["confidence"]}
        ]
        user = c.get("/users/fresh-user", params={"n": 20}).json()
    assert user["group_id"] == 0 and user["n_events"] == len(favourites)
    assert not {r["item_id"] for r in user["recommendations"]} & set(favourites)


def test_event_validation_and_limits(shared_server) -> None:
    with shared_server.client() as c:
        assert_error(c.post("/events", json={"event_id": "x", "user_id": "u"}), 422)
        assert_error(c.post("/events", json={"event_id": " ", "user_id": "u", "item_id": "i"}), 422)
        assert_error(c.post("/events", json=[]), 422)
        too_many = [_event(k, "u", "i") for k in range(1001)]
        assert_error(c.post("/events", json=too_many), 413, "payload_too_large")
        assert_error(
            c.post(
                "/events",
                json={"event_id": "x", "user_id": "u", "item_id": "i", "rating": "high"},
            ),
            422,
        )
