"""create_app(): the one place the application is assembled."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from litestar import Litestar, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.response import Redirect
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope
from psycopg_pool import AsyncConnectionPool

from app.auth.controller import AccountsController, MeController
from app.auth.middleware import JWTAuthMiddleware
from app.auth.passwords import Passwords
from app.auth.repository import UserRepository
from app.auth.tokens import TokenIssuer, TokenVerifier
from app.config import ConfigError, Settings
from app.db import DatabaseProbe, SqlFiles, create_pool, open_pool
from app.docs import PinnedScalarPlugin
from app.edge import EdgeMiddleware
from app.errors import EXCEPTION_HANDLERS
from app.events.controller import EventsController
from app.events.streams import StreamHub
from app.events.tickets import Tickets
from app.health import READY_TIMEOUT_S, HealthController
from app.logs import AccessLog, configure_logging
from app.metrics import flush_requests, observe_pool, worker_exited
from app.observability import ObservabilityMiddleware
from app.rate_limit import ConcurrencyLimit, RateLimiter
from app.sync.changes import ChangeFeed
from app.sync.controller import ChangesController
from app.sync.idempotency import Idempotency
from app.sync.purge import Purger
from app.tasks.controller import TagsController, TasksController
from app.tasks.repository import TaskRepository

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger("app")

# How often each worker publishes its request tallies and pool numbers for /metrics (a scrape also
# publishes its own worker's).
METRICS_PUBLISH_INTERVAL_S = 1.0

API_VERSION = "1.0.0"
SEARCHES_PER_USER = 1


def _openapi_config() -> OpenAPIConfig:
    components = Components(
        security_schemes={
            "BearerAuth": SecurityScheme(
                type="http",
                scheme="bearer",
                bearer_format="JWT",
                description="Bearer JWT: HS256 with the shared secret, or verified against the JWKS.",
            )
        }
    )
    return OpenAPIConfig(
        title="Tasks API",
        version=API_VERSION,
        description="A multi-user todo backend. Every `/api` route but sign-up/sign-in needs a bearer token.",
        path="/schema",
        render_plugins=[PinnedScalarPlugin(path=["/", "/scalar"])],
        components=[components],
        use_handler_docstrings=True,
    )


async def complete_allow_header(message: Message, scope: Scope) -> None:
    """Litestar 2.25 builds a path's automatic OPTIONS answer when the path's first handler is
    registered, so its `Allow` misses the methods of the path's other handlers (GET and POST on
    /api/tasks). Rewrite it from the finished routes; 405 answers already list them all.
    """
    if message["type"] != "http.response.start" or message["status"] != 204:
        return
    if scope["type"] != ScopeType.HTTP or scope["method"] != "OPTIONS":
        return
    template = scope.get("path_template")
    for route in Litestar.from_scope(scope).routes:  # OPTIONS is rare: no cache needed
        if isinstance(route, HTTPRoute) and route.path_format == template:
            MutableScopeHeaders.from_message(message)["allow"] = ", ".join(sorted(route.methods))
            return


@get("/docs", include_in_schema=False, exclude_from_auth=True)
async def docs_redirect() -> Redirect:
    """`/docs` is where many expect interactive docs; they live at `/schema`."""
    return Redirect("/schema")


@asynccontextmanager
async def _frozen_heap(app: Litestar) -> AsyncIterator[None]:
    """Once started, move every object that exists (the app, its routes, schemas, imported modules:
    ~75,000 objects) out of the cyclic garbage collector's reach for as long as the app runs.

    Without it every full (generation 2) collection walks them all: measured with `just tail`'s
    probe on a quiet machine, 16 full collections in ~30 s of writes at 32 connections, 36 ms each
    (max 41 ms), every request in flight waiting through it: the largest part of the service's p99
    on writes (create 34 ms, toggle 28 ms; 15 and 13 ms with collection off). Reference counting
    still frees these objects; only cycles among them are no longer looked for (they are long-lived
    by construction). Unfrozen at shutdown, so an app started and stopped in a test process leaves
    nothing uncollectable behind.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _publish_metrics(pool: AsyncConnectionPool) -> None:
    while True:
        observe_pool(pool.get_stats())
        flush_requests()
        await asyncio.sleep(METRICS_PUBLISH_INTERVAL_S)


def create_app(settings: Settings | None = None, *, span_exporter: SpanExporter | None = None) -> Litestar:
    """Build the ASGI app from `settings` (default: read from the environment).

    `span_exporter` (tests): trace into it, as if `OTEL_EXPORTER_OTLP_ENDPOINT` were set.
    """
    settings = settings or Settings.from_env()
    if settings.database_url is None:
        raise ConfigError("DATABASE_URL is not set (use `just dev` for an embedded database)")
    if settings.jwt_secret is None and settings.jwt_jwks_url is None:
        raise ConfigError("JWT_SECRET (or BETTER_AUTH_SECRET) is not set")

    log_format = settings.log_format or "text"
    configure_logging(settings.log_level, log_format)
    access_log = AccessLog(log_format)
    plugins = []
    tracing = None
    if settings.otel_exporter_otlp_endpoint is not None or span_exporter is not None:
        from app.tracing import Tracing  # only then is OpenTelemetry imported at all

        tracing = Tracing(settings, span_exporter)
        plugins.append(tracing.plugin())

    sql = SqlFiles()
    pool = create_pool(settings, sql, on_connect=None if tracing is None else tracing.instrument)
    tasks = TaskRepository(pool, sql, max_tasks=settings.tasks_max_per_user)
    write_rate = RateLimiter(settings.write_rate_per_min)
    # Searches hold at most a quarter of the pool, one per user (see ConcurrencyLimit).
    searches = ConcurrencyLimit(per_key=SEARCHES_PER_USER, total=max(1, settings.db_pool_max_size // 4))
    idempotency = Idempotency(pool, sql, settings.idempotency_ttl_s)
    changes = ChangeFeed(pool, sql, settings.sync_tombstone_ttl_s)
    streams = StreamHub(pool, sql, changes, settings)
    tickets = Tickets(pool, sql)
    purger = Purger(
        pool, sql, idempotency_ttl_s=settings.idempotency_ttl_s, tombstone_ttl_s=settings.sync_tombstone_ttl_s
    )
    users = UserRepository(
        pool,
        sql,
        max_failed_attempts=settings.auth_max_failed_attempts,
        max_failed_per_email=settings.auth_max_failed_per_email,
        lockout_s=settings.auth_lockout_s,
        rate_per_min=settings.auth_rate_per_min,
    )
    passwords = Passwords(max_queue=settings.auth_hash_queue)
    # Built-in accounts exist only where their tokens would be accepted (a secret, HS256 allowed).
    tokens = TokenIssuer.from_settings(settings)
    accounts = [] if tokens is None else [AccountsController]
    verifier = TokenVerifier(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await open_pool(pool)
        publisher = asyncio.get_running_loop().create_task(_publish_metrics(pool), name="metrics-publisher")
        try:
            yield
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
            await pool.close()
            access_log.flush()
            flush_requests()
            worker_exited(settings.prometheus_multiproc_dir)
            if tracing is not None:
                tracing.shutdown()

    api = Router(
        path="/",
        route_handlers=[TasksController, TagsController, ChangesController, EventsController, MeController, *accounts],
        middleware=[DefineMiddleware(JWTAuthMiddleware, verifier=verifier, tickets=tickets)],
        dependencies={
            "tasks": Provide(lambda: tasks, use_cache=True, sync_to_thread=False),
            "changes": Provide(lambda: changes, use_cache=True, sync_to_thread=False),
            "streams": Provide(lambda: streams, use_cache=True, sync_to_thread=False),
            "tickets": Provide(lambda: tickets, use_cache=True, sync_to_thread=False),
            "users": Provide(lambda: users, use_cache=True, sync_to_thread=False),
            "passwords": Provide(lambda: passwords, use_cache=True, sync_to_thread=False),
            "tokens": Provide(lambda: tokens, use_cache=True, sync_to_thread=False),
        },
    )
    app = Litestar(
        route_handlers=[api, HealthController, docs_redirect],
        # The verifier's lifespan prefetches the JWKS in the background and closes its client.
        # The events hub's lifespan ends (its streams, its listener) before the pool closes.
        # The heap is frozen last, once everything the app keeps for its lifetime exists.
        lifespan=[lifespan, verifier.lifespan, purger.lifespan, streams.lifespan, _frozen_heap],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[complete_allow_header] if tracing is None else [complete_allow_header, tracing.name_span],
        openapi_config=_openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        plugins=plugins,
        # app.logs configures logging (above); app.errors logs every 5xx once, with its request id.
        logging_config=None,
        debug=False,
    )
    app.state.probe = DatabaseProbe(pool, sql, READY_TIMEOUT_S)
    app.state.idempotency = idempotency
    app.state.streams = streams
    # On the state, not dependencies: a handler with two or more dependencies has Litestar resolve
    # them in an anyio task group, a task per dependency per request (measured: toggle 442 -> 627 µs
    # of CPU per request with the write limiter as a second dependency).
    app.state.write_rate = write_rate
    app.state.searches = searches
    # The edge wraps Litestar's whole handler (routing included), so 404/405 get its headers too.
    # Metrics and the access line inside it (they see its request id), around routing (404s count).
    app.asgi_handler = EdgeMiddleware(
        ObservabilityMiddleware(app.asgi_handler, settings, pool.get_stats, access_log), settings.cors_origins
    )
    return app
