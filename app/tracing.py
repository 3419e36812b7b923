"""OpenTelemetry traces: a span per request (Litestar's OpenTelemetry plugin) with a child span per
SQL statement (opentelemetry-instrumentation-psycopg), exported by OTLP/HTTP.

Only imported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`main.create_app` checks first): unset, no
OpenTelemetry module is loaded and nothing runs on the request path. The packages are the
`tracing` extra (`pip install -e '.[tracing]'`).

Spans carry the route template, never the query string (search text is the user's data).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry import trace
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from psycopg import AsyncConnection

from app.config import Settings
from app.observability import UNMATCHED

if TYPE_CHECKING:
    from litestar.types import Message, Scope
    from opentelemetry.trace import Span

# Attributes the ASGI instrumentation fills from the URL: replaced by the path alone.
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
_QUERY_ATTRIBUTES = ("url.query",)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span starts before routing (the plugin wraps Litestar's whole handler): the route template
    # is not known yet, and a raw path would make one span name per task id. `name_span` renames it.
    return f"{scope.get('method', '')} {UNMATCHED}", {}


async def name_span(message: Message, scope: Scope) -> None:
    """`before_send` hook: once routed, the request span is named by its route template."""
    if message["type"] != "http.response.start":
        return
    template = scope.get("path_template")
    if template:
        span = trace.get_current_span()
        span.update_name(f"{scope.get('method', '')} {template}")
        span.set_attribute(HTTP_ROUTE, template)


def _without_query(span: Span, scope: dict[str, Any]) -> None:
    if not span.is_recording():
        return
    path = scope.get("path", "")
    for name in _URL_ATTRIBUTES:
        span.set_attribute(name, path)
    for name in _QUERY_ATTRIBUTES:
        span.set_attribute(name, "")


@functools.cache
def _statement_text(query: bytes) -> str:
    lines = query.decode().splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines)


class Tracing:
    """The tracer provider of one app, its Litestar plugin and its per-connection SQL instrumentation."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = (settings.otel_exporter_otlp_endpoint or "").rstrip("/")
            # As the OTLP specification says of the generic variable: the signal's path is appended.
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
        else:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))

    def plugin(self) -> OpenTelemetryPlugin:
        return OpenTelemetryPlugin(
            OpenTelemetryConfig(
                tracer_provider=self.provider,
                scope_span_details_extractor=_span_details,
                server_request_hook_handler=_without_query,
                # One span per request (and its SQL), not one per ASGI message.
                exclude_spans=["receive", "send"],
            )
        )

    def instrument(self, connection: AsyncConnection[Any]) -> None:
        """For the pool's `configure`: every statement on `connection` becomes a child span."""
        PsycopgInstrumentor.instrument_connection(connection, tracer_provider=self.provider)
        traced: Any = connection.cursor_factory

        class TextStatements(traced):  # type: ignore[misc]
            """The instrumentation names a span by the statement's first word (SELECT, INSERT...), but
            only for a `str` statement and past `/* */` comments: our SQL files are bytes and open
            with `--` comments, which are left out of what is traced (and sent) here."""

            async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(query, bytes):
                    query = _statement_text(query)
                return await super().execute(query, *args, **kwargs)

        connection.cursor_factory = TextStatements

    name_span = staticmethod(name_span)

    def shutdown(self) -> None:
        self.provider.shutdown()
