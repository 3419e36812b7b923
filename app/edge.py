"""What every response gets, whatever answered it: request id, caching policy, CORS; and the
request's path normalized and `HEAD` served as `GET`, before anything matches on them.

A plain ASGI middleware wrapped around Litestar's whole handler (see `main.create_app`), so that it
also covers what Litestar answers before any route middleware runs (routing 404/405, errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from random import getrandbits as _random_bits

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from app.errors import CLIENT_GONE, error_body

# A client-sent id is echoed only when it is short and plain (no header injection, no log forging).
_SANE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Request-ID, If-Match, If-None-Match, Idempotency-Key, Last-Event-ID"
_ALLOWED_HEADER_SET = frozenset(h.strip().lower() for h in ALLOWED_HEADERS.split(","))
# Response headers a browser script may read (beyond the CORS-safelisted ones).
EXPOSED_HEADERS = b"Location, Retry-After, X-Request-ID, ETag, Idempotent-Replayed"
_ALLOWED_METHOD_SET = frozenset(m.strip() for m in ALLOWED_METHODS.split(","))
PREFLIGHT_MAX_AGE = "600"


# Scope key: this GET is a HEAD request (see EdgeMiddleware).
HEAD_REQUEST = "head_request"


def normalize_path(path: str) -> str:
    """`//api/./tasks` -> `/api/tasks`: empty and `.` segments dropped, `..` resolved, a trailing
    slash kept (`/api/tasks/` is a route of its own). Routing and every header rule see this path,
    so no spelling of a path escapes `Cache-Control: no-store` or CORS."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if segments and (path.endswith("/") or path.endswith("/.") or path.endswith("/..")):
        normalized += "/"
    return normalized


def _needs_normalizing(path: str) -> bool:
    return "//" in path or "/." in path


def new_request_id() -> bytes:
    """32 random hex digits, like a uuid4's, without `uuid4`'s getrandom() system call per request.

    `random` is seeded from the OS once per process (and again after a fork, in each worker). A
    request id identifies, it does not protect anything: it need not be unpredictable.
    """
    return b"%032x" % _random_bits(128)


class EdgeMiddleware:
    """Adds `X-Request-ID` everywhere, `Cache-Control: no-store` under /api, and answers CORS.

    CORS: only origins listed in `CORS_ORIGINS` get CORS headers (with credentials allowed). A
    preflight from any other origin gets no CORS headers, and an enveloped 400.
    """

    def __init__(self, app: ASGIApp, cors_origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(o.encode("latin-1") for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if _needs_normalizing(path):
            path = normalize_path(path)
            scope["path"] = path
            scope["raw_path"] = normalize_path(scope["raw_path"].decode("latin-1")).encode("latin-1")
        head = scope["method"] == "HEAD"
        if head:
            # Litestar routes HEAD only to explicit HEAD handlers: answer it as the GET (uvicorn,
            # seeing HEAD in its own scope, sends the GET's headers without the body). A handler whose
            # GET never ends by itself (the event stream) looks at HEAD_REQUEST.
            scope = {**scope, "method": "GET", HEAD_REQUEST: True}  # type: ignore[assignment]
        http_scope = scope

        origin: bytes | None = None
        request_id: bytes | None = None
        preflight_method: bytes | None = None
        preflight_headers: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _SANE_REQUEST_ID.match(value):
                    request_id = value
            elif name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight_method = value
            elif name == b"access-control-request-headers":
                preflight_headers = value
        if request_id is None:
            request_id = new_request_id()
        scope["request_id"] = request_id.decode()  # type: ignore[typeddict-unknown-key]

        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id)]
        if path.startswith("/api"):
            extra.append((b"cache-control", b"no-store"))
        allowed = origin is not None and origin in self.origins
        if origin is not None:
            extra.append((b"vary", b"Origin"))
        if allowed:
            assert origin is not None
            extra.append((b"access-control-allow-origin", origin))
            extra.append((b"access-control-allow-credentials", b"true"))
            extra.append((b"access-control-expose-headers", EXPOSED_HEADERS))

        if http_scope["method"] == "OPTIONS" and origin is not None and preflight_method is not None:
            await self._preflight(send, extra, allowed, preflight_method, preflight_headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            elif head and message["type"] == "http.response.body":
                message["body"] = b""
            await send(message)

        async def receive_watching() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope[CLIENT_GONE] = True  # type: ignore[literal-required]
            return message

        await self.app(scope, receive_watching, send_with_headers)

    @staticmethod
    async def _preflight(
        send: Send,
        extra: list[tuple[bytes, bytes]],
        allowed: bool,
        method: bytes,
        requested_headers: bytes | None,
    ) -> None:
        requested = {h.strip().lower() for h in (requested_headers or b"").decode("latin-1").split(",") if h.strip()}
        ok = allowed and method.decode("latin-1") in _ALLOWED_METHOD_SET and requested <= _ALLOWED_HEADER_SET
        if ok:
            headers = [
                *extra,
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
                (b"content-length", b"0"),
            ]
            await send(HTTPResponseStartEvent(type="http.response.start", status=204, headers=headers))
            await send(HTTPResponseBodyEvent(type="http.response.body", body=b"", more_body=False))
            return
        # Not allowed: no CORS headers at all (the browser then blocks the request), and the envelope.
        body = error_body(400, "CORS preflight rejected for this origin.")
        headers = [
            *(h for h in extra if not h[0].startswith(b"access-control-")),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send(HTTPResponseStartEvent(type="http.response.start", status=400, headers=headers))
        await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))
