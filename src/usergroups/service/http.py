"""uvicorn's HTTP protocol with our limits and our error shape (issue 22).

Requests that the HTTP parser refuses never reach the app, so uvicorn answered them
itself, in plain text ("Invalid HTTP request received."), and had no limit on the size of
the request line or the headers (a 200 KB header was read and passed on). The protocol
classes here are uvicorn's own (``httptools`` where installed, as uvicorn's "auto" picks,
else ``h11``) with three changes:

- a request line (URL) longer than ``limits.max_url_bytes`` is answered 414;
- headers longer than ``limits.max_header_bytes`` in all are answered 431;
- everything the parser refuses is answered in the service's JSON error shape,
  ``{"error": {"code": ..., "message": ...}}``, then the connection is closed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["error_bytes", "protocol_class"]

logger = logging.getLogger("usergroups.service")

_REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
_CODES = {400: "bad_request", 414: "uri_too_long", 431: "headers_too_large"}


def error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response in the error shape, closing the connection."""
    body = json.dumps({"error": {"code": _CODES[status], "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} ".encode()
        + _REASONS[status]
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


class _TooLarge(Exception):
    """Raised from a parser callback to stop parsing a request over a limit."""


def protocol_class(max_url_bytes: int, max_header_bytes: int) -> type[Any]:
    """uvicorn's HTTP protocol class (for ``uvicorn.Config(http=...)``) with the limits.

    ``max_url_bytes`` bounds the request target (path and query), ``max_header_bytes``
    the names and values of all headers together.
    """
    try:
        import httptools  # noqa: F401  (uvicorn's "auto" prefers it too)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return _h11_class(max_header_bytes)

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        _refusal: tuple[int, str] | None = None

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_bytes = 0
            self._refusal = None

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > max_url_bytes:
                self._refusal = (
                    414,
                    f"the URL is longer than {max_url_bytes} bytes; send long input in a "
                    "JSON body instead (POST)",
                )
                raise _TooLarge

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_bytes += len(name) + len(value)
            if self._header_bytes > max_header_bytes:
                self._refusal = (
                    431,
                    f"the request headers are longer than {max_header_bytes} bytes in all; "
                    "send fewer or shorter headers",
                )
                raise _TooLarge
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            status, message = self._refusal or (400, _MALFORMED)
            logger.warning("refused a request before routing: %d %s", status, message)
            self.transport.write(error_bytes(status, message))
            self.transport.close()

    return LimitedHttpToolsProtocol


_MALFORMED = (
    "the request is not valid HTTP/1.1 (request line or headers malformed); send a valid "
    "HTTP/1.1 request"
)


def _h11_class(max_header_bytes: int) -> type[Any]:  # pragma: no cover - without httptools
    """h11 bounds the request line and headers together (``h11_max_incomplete_event_size``,
    set from the limits by the caller); only the error shape changes here."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class JsonErrorH11Protocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            message = (
                f"{_MALFORMED}, and the request line and headers within {max_header_bytes} bytes"
            )
            self.transport.write(error_bytes(400, message))
            self.transport.close()

    return JsonErrorH11Protocol
