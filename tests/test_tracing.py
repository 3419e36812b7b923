"""OpenTelemetry: a span per request, named by its route template, with a child span per SQL
statement; exported by OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; not even imported when
it is not.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, SECRET, LiveServer, User
from harness import ServerProcess, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.config import Settings

QUERY_VALUE = "searched-" + uuid.uuid4().hex


def test_request_span_with_sql_child_spans(base_settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    user = User()
    with LiveServer(base_settings, span_exporter=exporter) as server, httpx.Client(base_url=server.url) as http:
        created = http.post("/api/tasks", json={"title": "traced"}, headers=user.headers)
        task_id = created.json()["data"]["id"]
        assert http.get(f"/api/tasks/{task_id}", headers=user.headers).status_code == 200
        assert http.get(f"/api/tasks?q={QUERY_VALUE}", headers=user.headers).status_code == 200
        assert http.get("/no/such/route").status_code == 404
    spans = exporter.get_finished_spans()
    requests = {s.name: s for s in spans if s.kind == SpanKind.SERVER}
    assert {"POST /api/tasks", "GET /api/tasks/{task_id}", "GET /api/tasks", "GET unmatched"} <= requests.keys()
    get = requests["GET /api/tasks/{task_id}"]
    assert get.attributes is not None and get.attributes["http.route"] == "/api/tasks/{task_id}"
    assert get.attributes["http.status_code"] == 200
    children = [s for s in spans if s.parent is not None and s.parent.span_id == get.context.span_id]
    sql = [s for s in children if s.kind == SpanKind.CLIENT and s.name == "SELECT"]
    assert len(sql) == 1, [(s.name, s.kind) for s in children]
    assert sql[0].attributes is not None and "FROM tasks" in str(sql[0].attributes["db.statement"])
    assert sql[0].context.trace_id == get.context.trace_id
    inserts = [
        s
        for s in spans
        if s.parent is not None and s.parent.span_id == requests["POST /api/tasks"].context.span_id and s.name == "WITH"
    ]
    assert len(inserts) == 1  # the create statement (a CTE)
    # Search text is the user's data: no query string in any span.
    assert all(QUERY_VALUE not in str(dict(s.attributes or {})) for s in spans)


class Collector:
    """A minimal OTLP/HTTP trace receiver: keeps every export request it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector.requests.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def span_names(self) -> list[str]:
        return [
            span.name
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


def test_spans_are_exported_by_otlp_when_the_endpoint_is_set(
    database_url: str, tmp_path: Path, collector: Collector
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_SERVICE_NAME": "tasks-api-under-test",
    }
    user = User()
    with ServerProcess(env, tmp_path / "server.log") as server:
        assert httpx.get(server.url + "/api/tasks", headers=user.headers).status_code == 200
        server.terminate()  # shutting down flushes what the batch processor holds
        assert server.wait(timeout=20) == 0
    wait_until(lambda: "GET /api/tasks" in collector.span_names(), timeout=5, what="exported request span")
    names = collector.span_names()
    assert "SELECT" in names, names
    resource = collector.requests[0].resource_spans[0].resource
    assert any(a.key == "service.name" and a.value.string_value == "tasks-api-under-test" for a in resource.attributes)


def test_nothing_of_opentelemetry_runs_without_an_endpoint(database_url: str) -> None:
    """Litestar itself imports its plugin's module at start-up when OpenTelemetry is installed; our
    part (the SDK, the exporter, the psycopg instrumentation, the plugin) is never loaded or added."""
    script = (
        "import sys\n"
        "from app.config import Settings\n"
        "from app.main import create_app\n"
        f"app = create_app(Settings.from_mapping({{'DATABASE_URL': {database_url!r}, 'JWT_SECRET': {SECRET!r}}}))\n"
        "ours = ('opentelemetry.sdk', 'opentelemetry.exporter', 'opentelemetry.instrumentation.psycopg',\n"
        "        'app.tracing')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(ours))\n"
        "assert not loaded, loaded\n"
        "plugins = [type(p).__name__ for p in app.plugins]\n"
        "assert 'OpenTelemetryPlugin' not in plugins, plugins\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60, env={"PATH": ""})
