"""The FastAPI application: routes parse, call one :class:`ServiceState` method, answer.

Every error, whatever its cause, is ``{"error": {"code": ..., "message": ...}}`` with no
stack trace and no file path; the ``X-Request-ID`` header of every answer names the log
line that tells more. Log lines escape control characters in anything a request chose
(its path above all), so no request can write a line of its own into the log.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from usergroups.errors import ConfigError, DataError, EventConflictError, EventStoreError
from usergroups.profiling import with_top_item_names
from usergroups.service.events import NewEvent
from usergroups.service.online import BatchingEncoder
from usergroups.service.security import KeyRing, RateLimiter, WrongKeyLimiter
from usergroups.service.settings import API_KEYS_ENV, LimitSettings, ServiceSettings
from usergroups.service.state import RefitBusyError, RefitUnavailableError, ServiceState

__all__ = [
    "ERROR_CODES",
    "ServiceError",
    "WrongKeyLimiter",
    "check_keys",
    "create_app",
    "for_log",
]

logger = logging.getLogger("usergroups.service")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, lone surrogates:
# each could end a log line early, make the file binary to grep, or fail to encode
_UNSAFE_IN_LOG = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_log(value: str) -> str:
    r"""``value`` safe to put in a log line: backslashes doubled, control characters escaped.

    For anything a request chose (path, query, header, id): a ``%0A`` in a URL then
    writes ``\x0a``, not a second line, and a ``%00`` no NUL byte. The escape is one to
    one, so the original can be read back.

    Examples
    --------
    >>> print(for_log("/users/x\nFORGED 200"))
    /users/x\x0aFORGED 200
    >>> print(for_log("a\\b\x00"))
    a\\b\x00
    """
    return _UNSAFE_IN_LOG.sub(_escape_char, value.replace("\\", "\\\\"))


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServiceError(Exception):
    """An HTTP error with a code and a message safe to show."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


# ------------------------------------------------------------------------- schemas
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, rate_limited")
    message: str = Field(description="what is wrong and how to fix it")


class ErrorResponse(BaseModel):
    error: ErrorBody


class AssignRequest(BaseModel):
    """A user the model has never seen, known by what they wrote (and optionally did)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=10_000, description="what the user wrote")
    items: list[Id] = Field(
        default_factory=list, max_length=100_000, description="items the user interacted with"
    )
    n: int = Field(10, ge=1, le=10_000, description="number of recommendations")


class EventIn(BaseModel):
    """One interaction; ``event_id`` makes retries safe (stored and applied once)."""

    model_config = ConfigDict(extra="forbid")
    event_id: Id
    user_id: Id
    item_id: Id
    rating: float | None = Field(None, allow_inf_nan=False)
    text: str | None = None
    timestamp: float | None = Field(None, allow_inf_nan=False, description="unix seconds")


class Recommendation(BaseModel):
    rank: int
    item_id: str
    title: str = Field(description="the item's title; empty when the data has none")
    name: str = Field(
        "", description="what to show: the title, else a name derived from the item's reviews"
    )
    name_source: Literal["title", "reviews", ""] = Field(
        "", description='"title", "reviews" (derived: mark it as such), or "" (show the id)'
    )
    score: float


class UserOut(BaseModel):
    user_id: str
    group_id: int
    label: str
    confidence: float
    membership: list[float] = Field(
        default_factory=list, description="probability of each segment, in group_id order"
    )
    runner_up: int = Field(-1, description="the next most probable segment (-1: none)")
    runner_up_confidence: float = 0.0
    known_to_model: bool
    n_events: int
    recommendations: list[Recommendation]


class AssignOut(BaseModel):
    group_id: int
    label: str
    confidence: float
    recommendations: list[Recommendation]
    unknown_items: list[str]


class EventResult(BaseModel):
    event_id: str
    seq: int
    status: str


class UserGroupOut(BaseModel):
    user_id: str
    group_id: int
    confidence: float


class EventsOut(BaseModel):
    stored: int
    duplicates: int
    events: list[EventResult]
    users: list[UserGroupOut]


class GroupSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    group_id: int
    size: int
    label: str


class GroupsOut(BaseModel):
    n_groups: int
    groups: list[GroupSummary]


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    model: dict[str, Any]
    events: dict[str, Any]


class RefitOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    state: str


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorResponse, "description": ERROR_CODES[s]} for s in statuses}


# ---------------------------------------------------------------------- middleware
class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RequestMiddleware:
    """Request ids, the body size limit, timing, metrics, access log, last-resort 500."""

    def __init__(
        self,
        app: Any,
        state: ServiceState,
        fast: _FastPath | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.limit = state.settings.limits.max_body_bytes
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = [500]
        started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                status[0] = int(message["status"])
                MutableHeaders(scope=message).append("x-request-id", rid)
            await send(message)

        try:
            receive_body = receive
            body: bytes | None = None
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._read_body(scope, receive, headers)
                if body is None:
                    await self._send_error(
                        send_with_id,
                        413,
                        "payload_too_large",
                        f"the request body is larger than {self.limit} bytes; send less "
                        "(e.g. split a batch of events)",
                    )
                    return
                receive_body = _replay(body, receive)
            if self.fast is None or not await self.fast(scope, send_with_id, body):
                await self.app(scope, receive_body, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], for_log(scope["path"]))
            if not started[0]:
                await self._send_error(
                    send_with_id,
                    500,
                    "internal_error",
                    f"internal error; quote request id {rid} to the operator",
                )
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            metrics = self.state.metrics
            metrics.requests.labels(scope["method"], name, str(status[0])).inc()
            metrics.latency.labels(name).observe(elapsed)
            key = scope.get("state", {}).get("key_name", "-")
            logger.info(
                "%s %s %d %.1fms key=%s",
                scope["method"],
                for_log(scope["path"]),
                status[0],
                1000 * elapsed,
                key,
            )
            request_id_var.reset(token)

    async def _read_body(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]
    ) -> bytes | None:
        """The whole body, or None when it exceeds the limit (read no further then)."""
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _send_error(send: Send, status: int, code: str, message: str) -> None:
        response = _error(status, code, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = [False]

    async def replay() -> Message:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------------- wrong keys
class _KeyFirstRoute(APIRoute):
    """A route whose key is checked before its body is read and parsed.

    FastAPI parses a JSON body before it solves a route's dependencies, so a client
    without a key would learn from a 400 how the body parses. The app's
    ``state.authenticate`` runs first instead; the route's own key dependency then finds
    its answer in the request and checks (and counts) nothing twice.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def key_first(request: Request) -> Response:
            authenticate = getattr(request.app.state, "authenticate", None)
            if authenticate is not None and self._needs_key(request):
                authenticate(request)
            return await handler(request)

        return key_first

    def _needs_key(self, request: Request) -> bool:
        checks = request.app.state.key_dependencies
        return any(dep.call in checks for dep in self.dependant.dependencies)


# -------------------------------------------------------------------------- helpers
def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and inf as null."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _field_of(loc: Sequence[Any]) -> str:
    """A field as the body names it: ``("body", "list[EventIn]", 3, "user_id")`` ->
    ``[3].user_id``; union branches (``EventIn``, ``list[EventIn]``) are left out."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "body" and not (part[:1].isupper() or "[" in part):
            out += f".{part}" if out else part
    return out or "body"


_CLASS_NAME = re.compile(r"\b(?:instance of )?[A-Z][A-Za-z]*(?:In|Out|Request|Body|Response)\b")


def _public_message(err: Mapping[str, Any]) -> str:
    """A validation message without the names of our schema classes.

    pydantic says "Input should be a valid dictionary or instance of EventIn": the class is
    ours, not the API's, so an object is named as JSON calls it.
    """
    if err.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        return "should be a JSON object"
    return _CLASS_NAME.sub("object", str(err.get("msg", "invalid")))


def _check_n(n: int, state: ServiceState) -> None:
    limit = state.settings.limits.max_n
    if n > limit:
        raise ServiceError(422, "validation_error", f"n is {n}; at most {limit} items per answer")


# ------------------------------------------------------------------------------ app
def check_keys(settings: ServiceSettings) -> None:
    """Raise :class:`ConfigError` when the settings hold no key and are not anonymous."""
    auth = settings.auth
    if not (auth.api_keys or auth.admin_keys or auth.anonymous):
        raise ConfigError(
            f"no API keys: set ${API_KEYS_ENV} (name:key,...) or [auth] api_keys in the "
            "settings file, or auth.anonymous = true for local development"
        )


async def _known_user(state: ServiceState, user_id: str, n: int) -> dict[str, Any]:
    """A known user's answer; the events other workers stored are applied first.

    In-memory lookups only: answered on the event loop, no thread hop (unless there are
    events to apply).
    """
    if state.needs_refresh():
        await run_in_threadpool(state.refresh)
    found = state.online.user(user_id, n)
    if found is None:
        raise ServiceError(
            404,
            "not_found",
            "unknown user_id; POST /assign places a new user, POST /events adds one",
        )
    return found


def create_app(state: ServiceState) -> FastAPI:
    """The application for an opened :class:`ServiceState`.

    The routes come from one router per area (service, groups, users, events, admin),
    the key checks from :func:`_key_checks`, the error shape from :func:`_add_error_handlers`.

    Parameters
    ----------
    state : ServiceState
        Already :meth:`~ServiceState.open`; the app closes it on shutdown.
    """
    check_keys(state.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        state.close()

    app = FastAPI(
        title="usergroups",
        version="1",
        summary="Groups of users for recommender systems: look up, assign, update, refit.",
        lifespan=lifespan,
    )
    app.state.service = state
    # routes declared below check their key before FastAPI parses their body
    app.router.route_class = _KeyFirstRoute
    client, admin, authenticate = _key_checks(state)
    app.state.authenticate = authenticate
    app.state.key_dependencies = {client, admin}
    # defaults, not Annotated aliases: this module's annotations are strings, and FastAPI
    # resolves them in the module's globals, where names local to a function are not
    deps = _Deps(state, Depends(client), Depends(admin), authenticate)
    _add_error_handlers(app)
    users = _user_routes(deps)
    for router in (_service_routes(deps), _group_routes(deps), users):
        app.include_router(router)
    for router in (_event_routes(deps), _admin_routes(deps)):
        app.include_router(router)
    app.add_middleware(RequestMiddleware, state=state, fast=_fast_paths(users, deps))
    return app


@dataclass(frozen=True)
class _Deps:
    """What the routers share: the state, the key dependencies, the key check itself."""

    state: ServiceState
    client: Any  # Depends(...) of the API-key check
    admin: Any  # Depends(...) of the admin-key check
    authenticate: Callable[[Request], tuple[str, bool]]


_KeyCheck = Callable[..., Awaitable[tuple[str, bool]]]
_FastPath = Callable[[Scope, Send, "bytes | None"], Awaitable[bool]]
"""A route's plain form answered by :class:`RequestMiddleware` (scope, send, the body of a
POST); False: not answered, the app takes the request."""


def _key_checks(
    state: ServiceState,
) -> tuple[_KeyCheck, _KeyCheck, Callable[[Request], tuple[str, bool]]]:
    """The dependencies that check an API key (``client``) and an admin key (``admin``),
    and the same check on a bare request (``authenticate``), with the rate limits."""
    settings = state.settings
    limits = settings.limits
    auth = settings.auth
    keys = KeyRing(
        {n: k.get_secret_value() for n, k in auth.api_keys.items()},
        {n: k.get_secret_value() for n, k in auth.admin_keys.items()},
    )
    # several workers: one bucket per key and per address for all of them, so N workers
    # do not allow N times the rate or N times the wrong keys
    per_key, per_address = state.shared_limits or (None, None)
    limiter = RateLimiter(limits.rate_per_s, limits.burst, shared=per_key)
    wrong_keys = WrongKeyLimiter(
        limits.wrong_key_rate_per_s, limits.wrong_key_burst, shared=per_address
    )
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
    bearer = HTTPBearer(auto_error=False)

    def _client(request: Request, x_api_key: str | None, token: Any) -> tuple[str, bool]:
        scope_state = request.scope.setdefault("state", {})
        known = scope_state.get("client")
        if known is not None:  # checked (and counted) already, before the body was parsed
            return cast(tuple[str, bool], known)
        presented = x_api_key or (token.credentials if token is not None else None)
        host = request.client.host if request.client else "unknown"
        name, admin = _identify(presented, host, keys, auth.anonymous, wrong_keys, limits)
        scope_state["key_name"] = name
        scope_state["client"] = (name, admin)
        _check_rate(limiter, limits, name)
        return name, admin

    async def client(
        request: Request,
        x_api_key: str | None = Security(api_key_header),
        token: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> tuple[str, bool]:
        return _client(request, x_api_key, token)

    async def admin(
        request: Request,
        x_api_key: str | None = Security(api_key_header),
        token: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> tuple[str, bool]:
        name, is_admin = _client(request, x_api_key, token)
        if not is_admin:
            raise ServiceError(
                403, "forbidden", f"key {name!r} is not an admin key; refits need an admin key"
            )
        return name, is_admin

    def authenticate(request: Request) -> tuple[str, bool]:
        return _client(
            request,
            request.headers.get("x-api-key"),
            _bearer_of(request.headers.get("authorization")),
        )

    return client, admin, authenticate


def _identify(
    presented: str | None,
    host: str,
    keys: KeyRing,
    anonymous: bool,
    wrong_keys: WrongKeyLimiter,
    limits: LimitSettings,
) -> tuple[str, bool]:
    """``(name, is_admin)`` of the key ``host`` presented (``anonymous@host`` when anonymous
    access is on and no key came); 401 for a wrong or missing key, 429 after too many wrong
    ones."""
    if presented:
        _check_wrong_keys(wrong_keys, limits, host)
    found = keys.identify(presented)
    if found is not None:
        return found
    if anonymous and not presented:
        return f"anonymous@{host}", False
    if presented:
        wrong_keys.failed(host)
    raise ServiceError(
        401,
        "unauthorized",
        "a valid API key is needed: send it as 'X-API-Key: KEY' or 'Authorization: Bearer KEY'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _check_wrong_keys(wrong_keys: WrongKeyLimiter, limits: LimitSettings, host: str) -> None:
    """429 while ``host`` has sent too many wrong keys."""
    wait = wrong_keys.wait(host)
    if wait > 0:
        raise ServiceError(
            429,
            "rate_limited",
            f"too many wrong API keys from {host}: at most {limits.wrong_key_burst}, "
            f"then one every {1 / limits.wrong_key_rate_per_s:g}s; retry in "
            f"{wait:.1f}s with the right key",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _check_rate(limiter: RateLimiter, limits: LimitSettings, name: str) -> None:
    """429 when key ``name`` has used its token bucket up."""
    allowed, wait = limiter.allow(name)
    if not allowed:
        raise ServiceError(
            429,
            "rate_limited",
            f"too many requests for key {name!r}: at most {limits.rate_per_s:g} per second "
            f"(bursts of {limits.burst}); retry in {wait:.2f}s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _add_error_handlers(app: FastAPI) -> None:
    """Every error in the one JSON shape, ``{"error": {"code", "message"}}``."""

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = ERROR_CODES.get(exc.status_code, "error")
        message = {
            400: "the request body is not valid JSON; send UTF-8 encoded JSON",
            404: f"no route {request.url.path}; see /docs for the API",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if broken is not None:
            reason = (broken.get("ctx") or {}).get("error", "JSON decode error")
            where = broken.get("loc", ("body", "?"))[-1]
            return _error(
                400,
                "bad_request",
                f"the request body is not valid JSON ({reason} at character {where}); send "
                "one JSON document, UTF-8 encoded, with 'Content-Type: application/json'",
            )
        unicode = next((e for e in errors if e.get("type") == "string_unicode"), None)
        if unicode is not None:  # a lone surrogate in an id: like one in a text, a 400
            field = _field_of(unicode.get("loc", ()))
            return _error(
                400,
                "bad_request",
                f"{field} holds a lone UTF-16 surrogate, which is not text; send UTF-8 text "
                "without lone surrogates or control characters",
            )
        problems: list[str] = []
        for err in errors:
            # public names only: the body's fields, never our schema classes (issue 22)
            problem = f"{_field_of(err.get('loc', ()))}: {_public_message(err)}"
            if problem not in problems:
                problems.append(problem)
        return _error(422, "validation_error", "; ".join(problems[:5]) or "invalid request")

    @app.exception_handler(DataError)
    async def _bad_input(request: Request, exc: DataError) -> Response:
        # InputError names the field; the encoder's DataError says which texts it refused
        return _error(400, "bad_request", str(exc))

    @app.exception_handler(EventConflictError)
    async def _conflict(request: Request, exc: EventConflictError) -> Response:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(EventStoreError)
    async def _store_error(request: Request, exc: EventStoreError) -> Response:
        logger.error("event store: %s", exc)
        return _error(503, "unavailable", "the event store is unavailable; retry later")


def _service_routes(deps: _Deps) -> APIRouter:
    """``/health`` and ``/metrics``."""
    router = APIRouter(route_class=_KeyFirstRoute)
    state = deps.state

    @router.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> Any:
        """Model version and counts; open (no key)."""
        return JSONResponse(_jsonable(state.health()))

    @router.get(
        "/metrics",
        tags=["service"],
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_errors(401, 429),
        },
    )
    def metrics(request: Request) -> Response:
        """Prometheus metrics (open unless ``auth.public_metrics = false``)."""
        if not state.settings.auth.public_metrics:
            deps.authenticate(request)
        body, content_type = state.metrics.render()
        return Response(body, media_type=content_type)

    return router


def _group_routes(deps: _Deps) -> APIRouter:
    """``/groups`` and ``/groups/{group_id}``."""
    router = APIRouter(route_class=_KeyFirstRoute)
    state = deps.state

    @router.get("/groups", response_model=GroupsOut, tags=["groups"], responses=_errors(401, 429))
    async def groups(who: tuple[str, bool] = deps.client) -> Any:
        """Every group: size, share, label, keywords, top items and their names."""
        frame = with_top_item_names(state.online.model.groups_)
        shown = (
            "group_id",
            "size",
            "share",
            "stability",
            "unstable",
            "label",
            "label_kind",
            "llm_label",
            "keywords",
            "top_items",
            "top_item_names",
            "top_item_name_sources",
        )
        cols = [c for c in shown if c in frame]
        records = _jsonable(frame[cols].to_dict(orient="records"))
        return JSONResponse({"n_groups": len(records), "groups": records})

    @router.get("/groups/{group_id}", tags=["groups"], responses=_errors(401, 404, 422, 429))
    async def group(group_id: int, who: tuple[str, bool] = deps.client) -> Any:
        """One group's whole profile, with the names of its top items."""
        frame = with_top_item_names(state.online.model.groups_)
        match = frame[frame["group_id"] == group_id]
        if match.empty:
            raise ServiceError(
                404,
                "not_found",
                f"no group {group_id}; GET /groups lists the {len(frame)} groups",
            )
        profile = match.iloc[0].to_dict()
        # the segment's sub-interests: its fine groups (issue 23); empty without them
        subs = state.online.model.sub_interests_
        profile["sub_interests"] = subs[subs["group_id"] == group_id].to_dict("records")
        return JSONResponse(_jsonable(profile))

    return router


def _user_routes(deps: _Deps) -> APIRouter:
    """``/users/{user_id}`` and ``/assign``."""
    router = APIRouter(route_class=_KeyFirstRoute)
    state = deps.state

    @router.get(
        "/users/{user_id}",
        response_model=UserOut,
        tags=["users"],
        responses=_errors(401, 404, 422, 429),
    )
    async def user(
        user_id: str,
        who: tuple[str, bool] = deps.client,
        n: Annotated[int, Query(ge=1, le=10_000, description="recommendations")] = 10,
    ) -> Any:
        """A known user's group, confidence and recommendations (events included)."""
        _check_n(n, state)
        return JSONResponse(await _known_user(state, user_id, n))

    @router.post(
        "/assign",
        response_model=AssignOut,
        tags=["users"],
        responses=_errors(400, 401, 413, 422, 429),
    )
    async def assign(body: AssignRequest, who: tuple[str, bool] = deps.client) -> Any:
        """Place a user the model has never seen: group, confidence, recommendations."""
        # the plain form of this request is answered by _fast_paths, with the same code
        return await _assign(state, body)

    return router


async def _assign(state: ServiceState, body: AssignRequest) -> JSONResponse:
    """``POST /assign``'s answer to a parsed body (the route and :func:`_fast_paths`)."""
    limits = state.settings.limits
    _check_n(body.n, state)
    if len(body.texts) > limits.max_texts:
        raise ServiceError(
            413,
            "payload_too_large",
            f"{len(body.texts)} texts; at most {limits.max_texts} per request",
        )
    if len(body.items) > limits.max_items:
        raise ServiceError(
            413,
            "payload_too_large",
            f"{len(body.items)} items; at most {limits.max_items} per request",
        )
    chars = sum(len(t) for t in body.texts)
    if chars > limits.max_chars:
        raise ServiceError(
            413,
            "payload_too_large",
            f"{chars} characters of text; at most {limits.max_chars} per request",
        )
    result, unknown = await _run_assign(state, body.texts, body.items, body.n)
    state.metrics.assignments.labels(group_id=str(result["group_id"]), source="assign").inc()
    return JSONResponse(_jsonable({**result, "unknown_items": unknown}))


async def _run_assign(
    state: ServiceState, texts: list[str], items: list[str], n: int
) -> tuple[dict[str, Any], list[str]]:
    """:meth:`ServiceState.assign` off the event loop.

    With a per-text encoder, on the encoder's own thread, in arrival order: the request
    is handed to one thread and back, instead of to a pool thread that hands its texts
    to the encoder thread and waits for them, with some 30 such threads contending for
    the interpreter under load (measured: 0.4-0.9 ms of CPU per request, issue 25).
    Batching encoders keep the pool, so that concurrent requests' texts share a pass.
    """
    encoder = state.online.model.encoder
    if isinstance(encoder, BatchingEncoder) and encoder.one_at_a_time:
        job = encoder.submit(state.assign, texts, items, n)
        if job is not None:  # None: the encoder closed (a model swap); the pool then
            return await asyncio.wrap_future(job)
    return await run_in_threadpool(state.assign, texts, items, n)


def _event_routes(deps: _Deps) -> APIRouter:
    """``/events``."""
    router = APIRouter(route_class=_KeyFirstRoute)
    state = deps.state
    limits = deps.state.settings.limits

    @router.post(
        "/events",
        response_model=EventsOut,
        tags=["events"],
        responses=_errors(400, 401, 409, 413, 422, 429, 503),
    )
    async def events(body: EventIn | list[EventIn], who: tuple[str, bool] = deps.client) -> Any:
        """Store one event or a list, durably, then update the users online."""
        batch = body if isinstance(body, list) else [body]
        if not batch:
            raise ServiceError(422, "validation_error", "send at least one event")
        if len(batch) > limits.max_events:
            raise ServiceError(
                413,
                "payload_too_large",
                f"{len(batch)} events; at most {limits.max_events} per request",
            )
        chars = sum(len(e.text or "") for e in batch)
        if chars > limits.max_chars:
            raise ServiceError(
                413,
                "payload_too_large",
                f"{chars} characters of text; at most {limits.max_chars} per request",
            )
        new = [
            NewEvent(e.event_id, e.user_id, e.item_id, e.rating, e.text, e.timestamp) for e in batch
        ]
        results, changed = await run_in_threadpool(
            state.ingest, new, single=not isinstance(body, list)
        )
        n_new = sum(r.status == "stored" for r in results)
        return JSONResponse(
            {
                "stored": n_new,
                "duplicates": len(results) - n_new,
                "events": [
                    {"event_id": r.event_id, "seq": r.seq, "status": r.status} for r in results
                ],
                "users": [
                    {"user_id": u, "group_id": g, "confidence": round(c, 4)}
                    for u, (g, c) in changed.items()
                ],
            }
        )

    return router


def _admin_routes(deps: _Deps) -> APIRouter:
    """``/refit`` (admin keys)."""
    router = APIRouter(route_class=_KeyFirstRoute)
    state = deps.state

    @router.post(
        "/refit",
        response_model=RefitOut,
        status_code=202,
        tags=["admin"],
        responses=_errors(401, 403, 409, 429, 503),
    )
    def start_refit(who: tuple[str, bool] = deps.admin) -> Any:
        """Refit on the data plus the stored events, keeping group ids (admin key)."""
        try:
            return JSONResponse(state.start_refit(), status_code=202)
        except RefitBusyError as exc:
            raise ServiceError(409, "conflict", str(exc)) from None
        except RefitUnavailableError as exc:
            raise ServiceError(503, "unavailable", str(exc)) from None

    @router.get("/refit", response_model=RefitOut, tags=["admin"], responses=_errors(401, 403, 429))
    def refit_status(who: tuple[str, bool] = deps.admin) -> Any:
        """The last refit: running, done (with its report) or failed."""
        return JSONResponse(_jsonable(state.refit_status))

    return router


def _fast_user(users: APIRouter, deps: _Deps) -> Callable[[Scope, Send], Awaitable[bool]]:
    """The fast path of ``GET /users/{user_id}`` (a route of ``users``) for
    :class:`RequestMiddleware`."""
    state, authenticate = deps.state, deps.authenticate
    user_route = next(r for r in users.routes if getattr(r, "path", None) == "/users/{user_id}")
    max_n = min(state.settings.limits.max_n, 10_000)

    async def fast_user(scope: Scope, send: Send) -> bool:
        """``GET /users/{user_id}`` in its plain form, without FastAPI's routing.

        The busiest route, and its own work takes microseconds (:mod:`.topitems`), so
        resolving dependencies and validating parameters would be most of its cost. The
        same checks, in the same order, and the same answers; anything else (an ``n``
        out of range, other parameters, a path that is not one segment) returns False and
        takes the full route, which answers it as before.
        """
        path: str = scope["path"]
        if scope["method"] != "GET" or not path.startswith("/users/"):
            return False
        user_id = path[7:]
        query: bytes = scope.get("query_string", b"")
        if not user_id or "/" in user_id:
            return False
        if not query:
            n = 10
        elif query.startswith(b"n=") and query[2:].isdigit() and len(query) <= 8:
            n = int(query[2:])
        else:
            return False
        if not 1 <= n <= max_n:
            return False
        scope["route"] = user_route  # metrics name the route as the full path does
        request = Request(scope)
        try:
            authenticate(request)
            response = JSONResponse(await _known_user(state, user_id, n))
        except ServiceError as exc:
            response = _error(exc.status, exc.code, exc.message, exc.headers)
        except EventStoreError as exc:
            logger.error("event store: %s", exc)
            response = _error(503, "unavailable", "the event store is unavailable; retry later")
        await _send_response(send, response)
        return True

    return fast_user


def _fast_assign(users: APIRouter, deps: _Deps) -> _FastPath:
    """The fast path of ``POST /assign`` (a route of ``users``) for :class:`RequestMiddleware`."""
    state, authenticate = deps.state, deps.authenticate
    assign_route = next(r for r in users.routes if getattr(r, "path", None) == "/assign")

    async def fast_assign(scope: Scope, send: Send, body: bytes | None) -> bool:
        """``POST /assign`` with a JSON body that is a valid :class:`AssignRequest`,
        without FastAPI's routing and dependencies (a third of the event loop's time per
        request, issue 25). The key is checked before any work, as the route does; the
        body is parsed as FastAPI parses it (``json.loads``, then the model). Anything
        else (another content type, a query string, a body that does not parse or
        validate) returns False before the key is checked and takes the full route,
        which answers it as before; answers and errors are the route's own
        (:func:`_assign`).
        """
        if body is None or scope["method"] != "POST" or scope["path"] != "/assign":
            return False
        if scope.get("query_string") or _header(scope, b"content-type") != b"application/json":
            return False
        try:
            parsed = AssignRequest.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # bad JSON, bad UTF-8, a body that fails
            return False
        scope["route"] = assign_route  # metrics name the route as the full path does
        request = Request(scope)
        try:
            authenticate(request)
            response: Response = await _assign(state, parsed)
        except ServiceError as exc:
            response = _error(exc.status, exc.code, exc.message, exc.headers)
        except DataError as exc:  # as the app's handler answers it (_add_error_handlers)
            response = _error(400, "bad_request", str(exc))
        await _send_response(send, response)
        return True

    return fast_assign


def _fast_paths(users: APIRouter, deps: _Deps) -> _FastPath:
    """The busiest routes in their plain form (:func:`_fast_user`, :func:`_fast_assign`)."""
    fast_user, fast_assign = _fast_user(users, deps), _fast_assign(users, deps)

    async def fast(scope: Scope, send: Send, body: bytes | None) -> bool:
        if scope["method"] == "GET":
            return await fast_user(scope, send)
        return await fast_assign(scope, send, body)

    return fast


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), as Starlette's ``headers.get``."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


async def _send_response(send: Send, response: Response) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _bearer_of(header: str | None) -> HTTPAuthorizationCredentials | None:
    if header and header.lower().startswith("bearer "):
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=header[7:].strip())
    return None


class _OneLineFormatter(logging.Formatter):
    """One record, one line: control characters in a message are escaped.

    A second guard behind :func:`for_log`, for messages that carry text from elsewhere
    (an exception's message, a library's output). Tracebacks keep their lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        if _UNSAFE_IN_LOG.search(record.message):
            record = logging.makeLogRecord(record.__dict__)
            record.message = _UNSAFE_IN_LOG.sub(_escape_char, record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    """Log lines with the request id: ``... [3f2a9c01d4e5b6a7] GET /users/u1 200 0.8ms``."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        _OneLineFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("sentence_transformers", "transformers", "jieba", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
