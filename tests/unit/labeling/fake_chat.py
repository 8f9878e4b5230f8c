"""A tiny OpenAI-compatible chat endpoint on 127.0.0.1 that answers as a test scripts it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(content: str) -> bytes:
    """A chat-completions response body whose message says ``content``."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}},
            ],
        }
    ).encode()


def label_answer(label: str = "Guitar players", description: str = "They buy strings.") -> bytes:
    return completion(json.dumps({"label": label, "description": description}))


@dataclass
class Reply:
    """One scripted answer: HTTP status, body, and a delay before answering."""

    status: int = 200
    body: bytes = field(default_factory=label_answer)
    delay_s: float = 0.0


@dataclass
class FakeEndpoint:
    """The server's script and what it received."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.default


@contextmanager
def serve_fake_chat() -> Iterator[FakeEndpoint]:
    """An endpoint at ``.url`` (``http://127.0.0.1:PORT/v1``) on a free port."""
    state: FakeEndpoint

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with state.lock:
                state.paths.append(self.path)
                state.headers.append({k.lower(): v for k, v in self.headers.items()})
                try:
                    state.requests.append(json.loads(raw))
                except ValueError:
                    state.requests.append({"raw": raw.decode("utf-8", "replace")})
            reply = state.next_reply()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = FakeEndpoint(url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
