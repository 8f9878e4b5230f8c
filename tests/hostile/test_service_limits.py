"""Hostile requests against a real server on loopback (issue 22): event ranges, header and
URL sizes, what the HTTP parser refuses, and public names in 422 messages.

Every refusal is the service's JSON error shape, ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from service_support import API_KEY, Server, assert_error, model_config

from usergroups import GroupDiscovery
from usergroups.testing import make_planted

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def hashing_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    planted = make_planted(n_users=80, n_groups=3, n_items=40, random_state=2)
    config = model_config().with_overrides({"clustering.n_groups": 3})
    GroupDiscovery(config).fit(planted.dataset).save(out)
    return out


def _event(**fields: Any) -> dict[str, Any]:
    return {"event_id": "e1", "user_id": "u-new", "item_id": "i1", **fields}


def _raw(server: Server, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send bytes as they are; the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), head
    return status, json.loads(body)


def _check_shape(body: dict[str, Any], code: str) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    return str(body["error"]["message"])


def test_issue22_event_ratings_and_timestamps_out_of_range_are_refused(
    hashing_model_dir, start_server
) -> None:
    """Issue 22: a rating of -1e300 was stored."""
    server = start_server(hashing_model_dir, {"limits": {"min_rating": 1, "max_rating": 5}})
    with server.client() as client:
        for bad, field in (
            (_event(rating=-1e300), "rating"),
            (_event(rating=6), "rating"),
            (_event(timestamp=-5.0), "timestamp"),
            (_event(timestamp=1e300), "timestamp"),
        ):
            body = assert_error(client.post("/events", json=bad), 400, "bad_request")
            assert body["message"].startswith(field), body
        in_ms = assert_error(
            client.post("/events", json=[_event(), _event(event_id="e2", timestamp=1.7e12)]),
            400,
        )
        assert in_ms["message"].startswith("[1].timestamp"), in_ms
        assert "milliseconds" in in_ms["message"]
        # nothing of a refused batch was stored; a good event is
        assert client.get("/health").json()["events"]["stored"] == 0
        good = client.post("/events", json=_event(rating=5, timestamp=1.7e9))
        assert good.status_code == 200, good.text


def test_issue22_long_headers_and_urls_get_the_json_error_shape(
    hashing_model_dir, start_server
) -> None:
    """Issue 22: a 200 KB header was accepted; a 100 KB URL got uvicorn's plain text."""
    server = start_server(hashing_model_dir, {})
    key = f"X-API-Key: {API_KEY}\r\n".encode()
    status, body = _raw(
        server,
        b"GET /groups HTTP/1.1\r\nHost: x\r\n" + key + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    )
    assert status == 431 and "32768 bytes" in _check_shape(body, "headers_too_large")
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(400))
    status, body = _raw(server, b"GET /groups HTTP/1.1\r\nHost: x\r\n" + key + many + b"\r\n")
    assert status == 431, body
    status, body = _raw(
        server, b"GET /groups?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n" + key + b"\r\n"
    )
    assert status == 414 and "8192 bytes" in _check_shape(body, "uri_too_long")
    status, body = _raw(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and "HTTP/1.1" in _check_shape(body, "bad_request")
    # the server goes on answering, with headers and URLs within the limits
    with server.client() as client:
        ok = client.get("/groups", headers={"X-Fine": "c" * 4000}, params={"q": "d" * 4000})
        assert ok.status_code == 200, ok.text


def test_issue22_validation_messages_name_fields_not_our_classes(
    hashing_model_dir, start_server
) -> None:
    """Issue 22: 422 messages named the internal `EventIn`."""
    server = start_server(hashing_model_dir, {})
    with server.client() as client:
        for bad in ([1, 2], "an event", [_event(rating="five")], {"user_id": "u"}):
            body = assert_error(client.post("/events", json=bad), 422, "validation_error")
            message = body["message"]
            assert "EventIn" not in message and "list[" not in message, message
        listed = assert_error(client.post("/events", json=[1]), 422)["message"]
        assert "[0]: should be a JSON object" in listed, listed
        missing = assert_error(client.post("/events", json={"user_id": "u"}), 422)
        assert "event_id: Field required" in missing["message"], missing
