"""Per-request metrics, the access log line and `GET /metrics`, in one ASGI wrapper.

A small middleware of our own rather than Litestar's `PrometheusMiddleware`: that one runs inside
the router (routing 404/405 are never counted), builds a `Request` and four label sets per request,
and keeps an in-progress gauge; this one wraps Litestar's whole handler, reads the route template
Litestar leaves in the scope, and shares one timer and one `send` wrapper between the metrics and
the access line.

`/metrics` is answered here, before Litestar, only when `METRICS_ENABLED` and the peer's address is
in `METRICS_ALLOW`; otherwise the request goes on to Litestar, which has no such route: the answer is
the very 404 of any unknown path.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from time import perf_counter

import anyio.to_thread
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from app import metrics
from app.config import Settings
from app.logs import REQUEST_ID, AccessLog

METRICS_PATH = "/metrics"
# Requests no route matched: one label value, whatever the path (paths are unbounded).
UNMATCHED = "unmatched"


class ObservabilityMiddleware:
    """Times every HTTP request; counts it by route template, method and status; logs one access line."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        pool_stats: Callable[[], dict[str, int]],
        access_log: AccessLog | None,
    ) -> None:
        self.app = app
        self.metrics_enabled = settings.metrics_enabled
        # Off with ACCESS_LOG=false, and when LOG_LEVEL hides INFO lines of `app.access`.
        enabled = settings.access_log and logging.getLogger("app.access").isEnabledFor(logging.INFO)
        self.access_log = access_log if enabled else None
        self.allowed = tuple(ipaddress.ip_network(entry, strict=False) for entry in settings.metrics_allow)
        self.multiproc_dir = settings.prometheus_multiproc_dir
        self.pool_stats = pool_stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        http_scope: HTTPScope = scope
        if scope["path"] == METRICS_PATH and self.metrics_enabled and self._may_scrape(http_scope):
            await self._serve_metrics(send)
            return
        start = perf_counter()
        status = 500  # if nothing was sent, uvicorn answers 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        request_id = REQUEST_ID.set(scope.get("request_id"))  # type: ignore[arg-type]  # set by the edge
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            elapsed = perf_counter() - start
            route = scope.get("path_template") or UNMATCHED
            if self.metrics_enabled:
                metrics.observe_request(route, http_scope["method"], status, elapsed)
            if self.access_log is not None:
                path: str = scope["path"]  # never the query string
                if not path.isprintable():  # a percent-decoded newline must not forge a text log line
                    path = path.encode("unicode_escape").decode("ascii")
                client = scope.get("client")
                self.access_log.log(
                    http_scope["method"],
                    route,
                    path,
                    status,
                    round(elapsed * 1000, 2),
                    client[0] if client else None,
                    scope.get("request_id"),
                )
            REQUEST_ID.reset(request_id)

    def _may_scrape(self, scope: HTTPScope) -> bool:
        if scope["method"] != "GET":
            return False
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.allowed)

    async def _serve_metrics(self, send: Send) -> None:
        metrics.observe_pool(self.pool_stats())  # this worker's numbers as of now
        metrics.flush_requests()
        # Reading every worker's file is blocking I/O: off the event loop.
        body = await anyio.to_thread.run_sync(metrics.exposition, self.multiproc_dir)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", metrics.CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
