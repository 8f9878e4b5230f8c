"""Issue 13: one request cannot hurt another, nor the log, nor guess keys at full speed.

Against real servers on loopback: bad texts and ids are refused with a 400 naming the
field, concurrent requests answer as if alone, request paths cannot forge log lines,
malformed JSON is a 400 only for a client with a key, and wrong keys are slowed.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import API_KEY, Server, assert_error

pytestmark = pytest.mark.timeout(300)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(fitted_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose encoder waits 200 ms for company, so concurrent requests batch."""
    work = tmp_path_factory.mktemp("isolation-server")
    model = work / "model"
    shutil.copytree(fitted_model_dir, model)
    settings_ = {
        "assign_batch_wait_ms": 200.0,
        "limits": {"rate_per_s": 10_000.0, "burst": 10_000},
    }
    started = Server(model, settings_, work).start()
    yield started
    started.stop()


def _post(server: Server, path: str, body: Any, key: str | None = API_KEY) -> httpx.Response:
    """POST ``body`` as JSON with ASCII escapes, so lone surrogates travel as ``\\ud800``."""
    headers = {**JSON, **({"X-API-Key": key} if key else {})}
    content = body if isinstance(body, bytes) else json.dumps(body)
    return httpx.post(f"{server.url}{path}", content=content, headers=headers, timeout=60)


def _stored(server: Server) -> int:
    return int(httpx.get(f"{server.url}/health").json()["events"]["stored"])


def test_issue13_a_lone_surrogate_fails_only_its_own_request_among_12_concurrent(
    server: Server,
) -> None:
    texts = [f"guitar strings and a capo, order {i}" for i in range(12)]
    texts[7] = "\ud800"
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda t: _post(server, "/assign", {"texts": [t]}), texts))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 11 and statuses[7] == 400, statuses
    err = assert_error(answers[7], 400, "bad_request")
    assert "texts[0]" in err["message"] and "surrogate" in err["message"]
    # batched with others, each answer is the one it gets alone
    for i, answer in enumerate(answers):
        if i != 7:
            alone = _post(server, "/assign", {"texts": [texts[i]]})
            assert alone.status_code == 200
            assert answer.json() == alone.json()


def test_issue13_events_refuse_a_lone_surrogate_and_store_nothing(server: Server) -> None:
    before = _stored(server)
    batch = [
        {"event_id": f"s-{uuid.uuid4().hex}", "user_id": "s-user", "item_id": "i1"},
        {
            "event_id": f"s-{uuid.uuid4().hex}",
            "user_id": "s-user",
            "item_id": "i2",
            "text": "\ud800",
        },
    ]
    err = assert_error(_post(server, "/events", batch), 400, "bad_request")
    assert err["message"].startswith("[1].text ")
    single = _post(server, "/events", batch[1])
    assert assert_error(single, 400)["message"].startswith("text ")
    assert _stored(server) == before


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("<br/> &nbsp; https://example.com/x", "empty"),
        ("a\x00b", "U+0000"),
        ("\x1b[31mred", "U+001B"),
        ("split\x1fhere", "U+001F"),
    ],
)
def test_issue13_assign_refuses_empty_texts_and_control_characters(
    server: Server, text: str, why: str
) -> None:
    err = assert_error(_post(server, "/assign", {"texts": ["fine words", text]}), 400)
    assert err["message"].startswith("texts[1] ") and why in err["message"], err


def test_assign_takes_tabs_and_line_breaks(server: Server) -> None:
    r = _post(server, "/assign", {"texts": ["first line\r\nsecond line\ttabbed"]})
    assert r.status_code == 200, r.text


def test_issue13_assign_refuses_item_ids_with_control_characters(server: Server) -> None:
    err = assert_error(
        _post(server, "/assign", {"texts": ["drums"], "items": ["i1", "i\x002"]}), 400
    )
    assert err["message"].startswith("items[1] ")


def test_issue13_a_percent_0a_path_writes_no_extra_log_line(server: Server) -> None:
    marker = uuid.uuid4().hex
    forged = f"/x%0AFORGED-{marker}%20INFO%20GET%20/refit%20200%200.1ms%20key=ops"
    r = httpx.get(f"{server.url}{forged}", headers={"X-Request-ID": f"lf-{marker}"})
    assert_error(r, 404, "not_found")
    nul = httpx.get(f"{server.url}/y%00{marker}", headers={"X-Request-ID": f"nul-{marker}"})
    assert_error(nul, 404, "not_found")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and f"nul-{marker}" not in server.logs():
        time.sleep(0.05)
    raw = server.log.read_bytes()
    assert b"\x00" not in raw, "a NUL byte reached the log"
    lines = raw.decode("utf-8").splitlines()
    mine = [line for line in lines if f"FORGED-{marker}" in line]
    assert len(mine) == 1, mine  # one request, one line
    assert f"[lf-{marker}]" in mine[0] and "GET /x\\x0aFORGED-" in mine[0]
    assert not any(line.startswith("FORGED") for line in lines)
    assert any(f"[nul-{marker}]" in line and "\\x00" in line for line in lines)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"texts": ["a"', b'{"texts": ["\xff\xfe"]}', b"[1, 2,]"],
    ids=["garbage", "truncated", "not-utf8", "trailing-comma"],
)
def test_issue13_malformed_json_is_a_400(server: Server, body: bytes) -> None:
    for path in ("/assign", "/events"):
        err = assert_error(_post(server, path, body), 400, "bad_request")
        assert "JSON" in err["message"], err


def test_issue13_the_key_is_checked_before_the_body_is_parsed(server: Server) -> None:
    for path in ("/assign", "/events"):
        assert_error(_post(server, path, b"{not json", key=None), 401, "unauthorized")
        assert_error(_post(server, path, b"{not json", key="w" * 32), 401, "unauthorized")
        assert_error(_post(server, path, {"texts": 3}, key=None), 401, "unauthorized")
        assert_error(_post(server, path, b"{not json"), 400, "bad_request")


@pytest.mark.parametrize(
    ("user_id", "why"),
    [
        ("a/b", "'/'"),
        ("/lead", "'/'"),
        ("trail/", "'/'"),
        (".", "path step"),
        ("..", "path step"),
        ("a\nb", "U+000A"),
        ("a\x00b", "U+0000"),
        ("\ud800x", "surrogate"),
    ],
)
def test_issue13_user_ids_get_users_cannot_read_back_are_refused(
    server: Server, user_id: str, why: str
) -> None:
    before = _stored(server)
    event = {"event_id": f"id-{uuid.uuid4().hex}", "user_id": user_id, "item_id": "i1"}
    err = assert_error(_post(server, "/events", event), 400, "bad_request")
    assert err["message"].startswith("user_id ") and why in err["message"], err
    listed = assert_error(_post(server, "/events", [event]), 400)
    assert listed["message"].startswith("[0].user_id ")
    assert _stored(server) == before


@given(user_id=st.text(min_size=1, max_size=12))
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_issue13_every_user_id_events_accept_can_be_read_back(server: Server, user_id: str) -> None:
    event = {"event_id": f"rb-{uuid.uuid4().hex}", "user_id": user_id, "item_id": "i1"}
    r = _post(server, "/events", event)
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code != 200:
        assert_error(r, r.status_code)
        return
    stored_id = r.json()["users"][0]["user_id"]  # as stored: surrounding whitespace trimmed
    back = httpx.get(
        f"{server.url}/users/{quote(stored_id, safe='')}",
        headers={"X-API-Key": API_KEY},
        timeout=30,
    )
    assert back.status_code == 200, (user_id, stored_id, back.text)
    assert back.json()["user_id"] == stored_id


def _second_loopback_address() -> str | None:
    """127.0.0.2, if this machine routes it to loopback (Linux does: all of 127/8)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        return None
    return "127.0.0.2"


def test_issue13_wrong_keys_from_one_address_get_429_and_others_keep_working(
    model_dir: Path, start_server: Any
) -> None:
    limits = {"wrong_key_burst": 3, "wrong_key_rate_per_s": 0.05}
    server = start_server(model_dir, {"limits": limits})
    wrong = {"X-API-Key": "a-wrong-key-" + "x" * 20}
    right = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        codes = [c.get("/groups", headers=wrong).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        limited = c.get("/groups", headers=wrong)
        err = assert_error(limited, 429, "rate_limited")
        assert "wrong API keys" in err["message"]
        assert int(limited.headers["retry-after"]) >= 1
        # bodies are not parsed, and guesses not compared, while the address waits
        assert_error(c.post("/assign", content=b"{not json", headers={**wrong, **JSON}), 429)
        assert_error(c.get("/groups", headers=right), 429, "rate_limited")
        # requests without a key guess nothing and are not slowed
        assert_error(c.get("/groups"), 401, "unauthorized")
    other = _second_loopback_address()
    if other is None:
        pytest.skip("cannot bind 127.0.0.2 here to act as a second client")
    transport = httpx.HTTPTransport(local_address=other)
    with httpx.Client(base_url=server.url, timeout=30, transport=transport) as c:
        assert c.get("/groups", headers=right).status_code == 200
        assert_error(c.get("/groups", headers=wrong), 401, "unauthorized")


def test_issue13_a_forged_forwarded_for_header_does_not_dodge_the_wrong_key_limit(
    model_dir: Path, start_server: Any
) -> None:
    """Without trusted proxies, X-Forwarded-For is ignored: each guess below claims another
    address, and the connection's own address is still the one that gets limited."""
    limits = {"wrong_key_burst": 3, "wrong_key_rate_per_s": 0.05}
    server = start_server(model_dir, {"limits": limits})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        codes = [
            c.get(
                "/groups",
                headers={"X-API-Key": "w" * 32, "X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(5)
        ]
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]
