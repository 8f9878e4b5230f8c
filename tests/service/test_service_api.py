"""Every endpoint's happy path and error shape, against a real uvicorn server."""

from __future__ import annotations

import json

import httpx
import pytest
from service_support import ADMIN_KEY, API_KEY, Server, assert_error

pytestmark = pytest.mark.timeout(300)


def test_health_is_open_and_names_the_model(shared_server: Server) -> None:
    r = httpx.get(f"{shared_server.url}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert len(body["model"]["version"]) == 12
    assert body["model"]["n_groups"] == 3
    assert body["model"]["n_users"] > 0
    assert r.headers["x-request-id"]


def test_request_id_is_echoed_when_valid_and_replaced_when_not(shared_server: Server) -> None:
    ok = httpx.get(f"{shared_server.url}/health", headers={"X-Request-ID": "abc-123"})
    assert ok.headers["x-request-id"] == "abc-123"
    bad = httpx.get(f"{shared_server.url}/health", headers={"X-Request-ID": "no spaces\tplease"})
    assert bad.headers["x-request-id"] != "no spaces\tplease"
    assert "abc-123" in shared_server.logs()


def test_groups_lists_every_group_and_one_profile(shared_server: Server) -> None:
    with shared_server.client() as c:
        groups = c.get("/groups").json()
        assert groups["n_groups"] == 3
        assert sorted(g["group_id"] for g in groups["groups"]) == [0, 1, 2]
        # every group says how reliably it comes back on resampled users (issue 14)
        assert all(0.0 <= g["stability"] <= 1.0 for g in groups["groups"])
        assert all(isinstance(g["unstable"], bool) for g in groups["groups"])
        one = c.get("/groups/1").json()
        assert one["group_id"] == 1 and one["size"] > 0 and one["keywords"]
        assert_error(c.get("/groups/99"), 404, "not_found")
        assert_error(c.get("/groups/abc"), 422, "validation_error")


def test_users_answer_group_and_unseen_recommendations(
    shared_server: Server, planted: object
) -> None:
    from usergroups import GroupDiscovery

    model = GroupDiscovery.load(shared_server.model_dir)
    user = str(model.user_ids_.ids[0])
    with shared_server.client() as c:
        body = c.get(f"/users/{user}", params={"n": 5}).json()
    assert body["group_id"] == int(model.labels_[0])
    assert body["known_to_model"] is True and body["n_events"] == 0
    assert 0 < len(body["recommendations"]) <= 5
    ranks = [r["rank"] for r in body["recommendations"]]
    assert ranks == list(range(1, len(ranks) + 1))
    seen = set(model.seen_[0].indices.tolist())
    items = {model.item_ids_.get(r["item_id"]) for r in body["recommendations"]}
    assert not items & seen
    expected = model.recommend([user], n=5)["item_id"].tolist()
    assert [r["item_id"] for r in body["recommendations"]] == expected


def test_unknown_user_is_a_404_in_the_error_shape(shared_server: Server) -> None:
    with shared_server.client() as c:
        err = assert_error(c.get("/users/nobody-here"), 404, "not_found")
    assert "nobody-here" not in err["message"] or "unknown" in err["message"]


def test_assign_places_a_new_user_like_the_library(shared_server: Server, planted: object) -> None:
    import numpy as np

    from usergroups import GroupDiscovery

    model = GroupDiscovery.load(shared_server.model_dir)
    text = planted.text_for_group(0, np.random.default_rng(1))  # type: ignore[attr-defined]
    with shared_server.client() as c:
        body = c.post("/assign", json={"texts": [text], "n": 4}).json()
    expected = model.assign([text], n=4)
    assert body["group_id"] == int(expected["group_id"][0])
    assert body["confidence"] == pytest.approx(float(expected["confidence"][0]), abs=1e-3)
    assert [r["item_id"] for r in body["recommendations"]] == list(expected["items"][0])


def test_assign_with_items_leaves_them_out(shared_server: Server) -> None:
    from usergroups import GroupDiscovery

    model = GroupDiscovery.load(shared_server.model_dir)
    items = [str(i) for i in model.item_ids_.ids[:3]]
    with shared_server.client() as c:
        body = c.post(
            "/assign", json={"texts": ["guitar strings"], "items": [*items, "nope"], "n": 10}
        ).json()
    assert body["group_id"] in (0, 1, 2)
    assert body["unknown_items"] == ["nope"]
    assert not {r["item_id"] for r in body["recommendations"]} & set(items)


def test_assign_limits_answer_413(shared_server: Server) -> None:
    with shared_server.client() as c:
        assert_error(c.post("/assign", json={"texts": ["a"] * 17}), 413, "payload_too_large")
        assert_error(c.post("/assign", json={"texts": ["a" * 20_001]}), 413)
        assert_error(c.post("/assign", json={"texts": []}), 422, "validation_error")
        assert_error(c.post("/assign", json={"texts": ["a"], "n": 101}), 422)
        assert_error(c.post("/assign", json={"text": "a"}), 422)
        # issue 13: a body that is not JSON is a 400, as the docs say (was 422)
        assert_error(
            c.post("/assign", content=b"{not json", headers={"Content-Type": "application/json"}),
            400,
            "bad_request",
        )


def test_body_size_limit_answers_413_before_parsing(shared_server: Server) -> None:
    big = json.dumps({"texts": ["x" * (1_100_000)]})
    with shared_server.client() as c:
        assert_error(
            c.post("/assign", content=big, headers={"Content-Type": "application/json"}),
            413,
            "payload_too_large",
        )

        def chunks():  # no Content-Length: the limit holds for streamed bodies too
            for _ in range(40):
                yield b"x" * 32_768

        assert_error(c.post("/events", content=chunks()), 413, "payload_too_large")


def test_keys_are_required_and_checked(shared_server: Server) -> None:
    url = shared_server.url
    err = assert_error(httpx.get(f"{url}/groups"), 401, "unauthorized")
    assert "X-API-Key" in err["message"]
    assert_error(httpx.get(f"{url}/groups", headers={"X-API-Key": "wrong" * 5}), 401)
    bearer = httpx.get(f"{url}/groups", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bearer.status_code == 200
    admin_as_user = httpx.get(f"{url}/groups", headers={"X-API-Key": ADMIN_KEY})
    assert admin_as_user.status_code == 200
    assert API_KEY not in shared_server.logs()


def test_refit_needs_an_admin_key(shared_server: Server) -> None:
    with shared_server.client() as c:
        assert_error(c.post("/refit"), 403, "forbidden")
    with shared_server.client(None) as c:
        assert_error(c.post("/refit"), 401, "unauthorized")
    with shared_server.client(ADMIN_KEY) as c:
        # the shared server has no [refit] data configured
        assert_error(c.post("/refit"), 503, "unavailable")
        assert c.get("/refit").json()["state"] == "idle"


def test_unknown_routes_and_methods_use_the_error_shape(shared_server: Server) -> None:
    with shared_server.client() as c:
        assert_error(c.get("/nowhere"), 404, "not_found")
        assert_error(c.delete("/groups"), 405, "method_not_allowed")


def test_metrics_count_requests_and_assignments(shared_server: Server) -> None:
    with shared_server.client() as c:
        c.post("/assign", json={"texts": ["drum sticks snare"]})
        text = c.get("/metrics").text
    assert "usergroups_http_requests_total" in text
    assert 'route="/users/{user_id}"' in text or 'route="/assign"' in text
    assert "usergroups_http_request_duration_seconds_bucket" in text
    assert 'usergroups_assignments_total{group_id="' in text
    assert "usergroups_model_info" in text


def test_openapi_document_lists_every_route(shared_server: Server) -> None:
    doc = httpx.get(f"{shared_server.url}/openapi.json").json()
    paths = set(doc["paths"])
    assert {
        "/health",
        "/groups",
        "/groups/{group_id}",
        "/users/{user_id}",
        "/assign",
        "/events",
        "/refit",
        "/metrics",
    } <= paths
    assert "ErrorResponse" in doc["components"]["schemas"]


def test_rate_limit_answers_429_with_retry_after(model_dir, start_server) -> None:
    server = start_server(model_dir, {"limits": {"rate_per_s": 0.5, "burst": 3}})
    with server.client() as c:
        codes = [c.get("/groups").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        limited = c.get("/groups")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
    # another key has its own bucket
    with server.client(ADMIN_KEY) as c:
        assert c.get("/groups").status_code == 200


def test_issue25_plain_assign_answers_as_the_full_route_does(shared_server: Server) -> None:
    """A plain ``POST /assign`` (JSON content type, no query) is answered without FastAPI's
    routing; the same bodies, other content types or a query string, take the full route:
    the answers and errors must be the same bytes."""
    full = {"Content-Type": "application/json; charset=utf-8"}
    plain = {"Content-Type": "application/json"}
    bodies: list[dict[str, object]] = [
        {"texts": ["guitar strings and a tuner"], "n": 5},
        {"texts": ["drum sticks", "a snare"], "items": ["nope"]},
        {"texts": ["fine", "bad \u0007 bell"]},  # 400: a control character
        {"texts": ["a"], "n": 101},  # 422 from the route's own check of n
        {"texts": []},  # 422 from the model: plain takes the full route
        {"texts": ["a"] * 17},  # 413
    ]
    with shared_server.client() as c:
        for body in bodies:
            data = json.dumps(body).encode()
            a = c.post("/assign", content=data, headers=plain)
            b = c.post("/assign", content=data, headers=full)
            assert (a.status_code, a.content) == (b.status_code, b.content), body
            assert a.headers["content-type"] == b.headers["content-type"]
    with shared_server.client(key="wrong-key-0123456789abcdef") as c:
        data = json.dumps(bodies[0]).encode()
        a = c.post("/assign", content=data, headers=plain)
        b = c.post("/assign", content=data, headers=full)
    assert a.status_code == b.status_code == 401 and a.content == b.content
