"""`GET /metrics`: Prometheus text, correct across worker processes, only for allowed addresses.

The multi-worker test runs the server as production does (`python -m app.serve`, WORKERS=2) and
sends known traffic on fresh connections (so both workers serve some); every scrape, whichever
worker answers it, must show exactly that traffic.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
from conftest import SECRET, LiveServer, User
from harness import ServerProcess, wait_until
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings

# Local source addresses: all of 127.0.0.0/8 reaches a server bound to 127.0.0.1 on Linux.
OTHER_LOOPBACK = "127.0.0.2"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def fresh(url: str, source: str | None = None) -> httpx.Client:
    """A client that opens a new connection per request (so a multi-worker server spreads them)."""
    transport = httpx.HTTPTransport(local_address=source) if source else None
    return httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0), transport=transport)


def test_counts_and_histograms_by_route_template_across_two_workers(database_url: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A previous run's file: it must be cleared at start, not added to (or break) this run's numbers.
    (metrics_dir / "counter_1.db").write_bytes(b"left over from a previous run")
    env = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "WORKERS": "2",
        "DB_POOL_MIN_SIZE": "2",
        "DB_POOL_MAX_SIZE": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "ACCESS_LOG": "false",
    }
    user = User()
    with ServerProcess(env, tmp_path / "server.log") as server, fresh(server.url) as http:
        ids = []
        for n in range(6):
            created = http.post("/api/tasks", json={"title": f"t{n}"}, headers=user.headers)
            assert created.status_code == 201
            ids.append(created.json()["data"]["id"])
        for task_id in ids:
            assert http.get(f"/api/tasks/{task_id}", headers=user.headers).status_code == 200
        for _ in range(4):
            assert http.get("/api/tasks/999999999", headers=user.headers).status_code == 404
            assert http.get("/api/tasks?limit=0", headers=user.headers).status_code == 422
            assert http.get("/no/such/route/4711").status_code == 404
        assert http.get("/api/tasks").status_code == 401

        # Two workers, each with its own files (the leftover file is gone).
        assert len(list(metrics_dir.glob("gauge_livesum_*.db"))) == 2, sorted(metrics_dir.iterdir())
        assert not (metrics_dir / "counter_1.db").exists()

        # The pool gauges are the sum over both workers (DB_POOL_MIN_SIZE=2 each).
        def pools_reported() -> bool:
            scraped = samples(http.get("/metrics").text)
            return value(scraped, "db_pool_size") >= 4 and value(scraped, "db_pool_max") == 6

        wait_until(pools_reported, timeout=10, what="pool gauges of both workers")

        expected = {
            ("/api/tasks", "POST", "201"): 6,
            ("/api/tasks/{task_id}", "GET", "200"): 6,
            ("/api/tasks/{task_id}", "GET", "404"): 4,
            ("/api/tasks", "GET", "422"): 4,
            ("/api/tasks", "GET", "401"): 1,
            ("unmatched", "GET", "404"): 4,
        }

        def all_counted() -> bool:  # each worker hands its tallies over within a second
            scraped = samples(http.get("/metrics").text)
            return all(
                value(scraped, "http_requests_total", route=route, method=method, status=status) == count
                for (route, method, status), count in expected.items()
            )

        wait_until(all_counted, timeout=10, what="both workers' requests counted")
        for _ in range(4):  # whichever worker answers, the same totals
            scrape = http.get("/metrics")
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain; version=")
            scraped = samples(scrape.text)
            by = dict(scraped)
            for (route, method, status), count in expected.items():
                assert value(by, "http_requests_total", route=route, method=method, status=status) == count
            labels = {"route": "/api/tasks/{task_id}", "method": "GET", "status": "200"}
            assert value(by, "http_request_duration_seconds_count", **labels) == 6
            assert value(by, "http_request_duration_seconds_bucket", le="+Inf", **labels) == 6
            assert 0 < value(by, "http_request_duration_seconds_sum", **labels) < 30
            assert value(by, "db_pool_waiting") == 0
            assert value(by, "db_pool_idle") <= value(by, "db_pool_size")
            assert "event_streams_open" in scrape.text
            # No raw path (ids) and no query string ever becomes a label.
            assert "999999999" not in scrape.text and "4711" not in scrape.text and "limit=" not in scrape.text

        # A worker killed outright: uvicorn starts another, and the dead one's pool stops counting.
        dead = int(next(metrics_dir.glob("gauge_livesum_*.db")).stem.rsplit("_", 1)[1])
        os.kill(dead, signal.SIGKILL)

        def replaced() -> bool:
            files = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("gauge_livesum_*.db")}
            scraped = samples(http.get("/metrics").text)
            return dead not in files and len(files) == 2 and value(scraped, "db_pool_max") == 6

        wait_until(replaced, timeout=30, what="the killed worker replaced and forgotten")
        counted = samples(http.get("/metrics").text)  # the dead worker's counts stay: counters never go down
        assert value(counted, "http_requests_total", route="/api/tasks", method="POST", status="201") == 6

        server.terminate()
        assert server.wait(timeout=20) == 0


def _unknown_route_answer(url: str, path: str, source: str | None = None) -> tuple[int, bytes, str]:
    with fresh(url, source) as http:
        answer = http.get(path)
    return answer.status_code, answer.content, answer.headers.get("content-type", "")


def test_metrics_are_404_like_an_unknown_route_from_other_addresses(base_settings: Settings) -> None:
    only_other = base_settings.with_(metrics_allow=(OTHER_LOOPBACK,))
    with LiveServer(base_settings) as default, LiveServer(only_other) as other:
        # Default METRICS_ALLOW (127.0.0.1, ::1): a loopback peer at another address is refused...
        refused = _unknown_route_answer(default.url, "/metrics", source=OTHER_LOOPBACK)
        assert refused == _unknown_route_answer(default.url, "/metricz", source=OTHER_LOOPBACK)
        assert refused[0] == 404 and b"NOT_FOUND" in refused[1]
        assert _unknown_route_answer(default.url, "/metrics")[0] == 200
        # ...and an allow-list of one other address refuses 127.0.0.1 itself.
        assert _unknown_route_answer(other.url, "/metrics", source=OTHER_LOOPBACK)[0] == 200
        assert _unknown_route_answer(other.url, "/metrics") == _unknown_route_answer(other.url, "/metricz")
        # Other methods are no way in either.
        with fresh(default.url) as http:
            assert http.post("/metrics").status_code == http.post("/metricz").status_code == 404


def test_metrics_disabled_is_404(base_settings: Settings) -> None:
    with LiveServer(base_settings.with_(metrics_enabled=False)) as server:
        assert _unknown_route_answer(server.url, "/metrics") == _unknown_route_answer(server.url, "/metricz")


def test_rejections_and_sign_in_failures_are_counted(base_settings: Settings) -> None:
    """Counters of this process (servers in this test process share them): compare before/after."""
    settings = base_settings.with_(max_body_bytes=1024, auth_max_failed_attempts=2, write_rate_per_min=1)
    with LiveServer(settings) as server, fresh(server.url) as http:
        before = samples(http.get("/metrics").text)
        user = User()
        assert (
            http.post("/api/tasks", content=b'{"title": "' + b"x" * 2000 + b'"}', headers=user.headers).status_code
            == 413
        )
        email = f"{user.id}@example.com"
        assert (
            http.post("/api/auth/signup", json={"email": email, "password": "long enough", "name": "N"}).status_code
            == 201
        )
        for _ in range(2):
            assert http.post("/api/auth/signin", json={"email": email, "password": "wrong one!"}).status_code == 401
        assert http.post("/api/auth/signin", json={"email": email, "password": "wrong one!"}).status_code == 429
        assert http.get("/api/tasks", headers={"Authorization": "Bearer not.a.token"}).status_code == 401
        assert 400 <= http.request("PROPFIND", "/api/tasks").status_code < 500
        writer = User()
        assert http.post("/api/tasks", json={"title": "one"}, headers=writer.headers).status_code == 201
        assert http.post("/api/tasks", json={"title": "two"}, headers=writer.headers).status_code == 429
        scrape = http.get("/metrics").text
        after = samples(scrape)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("limit_rejections_total", limit="body_size") == 1
    assert delta("limit_rejections_total", limit="sign_in_lockout") == 1
    assert delta("limit_rejections_total", limit="write_rate") == 1
    assert delta("sign_in_failures_total", reason="bad_credentials") == 2
    assert delta("sign_in_failures_total", reason="locked_out") == 1
    assert delta("token_rejections_total", reason="malformed") == 1
    # A made-up method is counted, under one shared label value.
    assert "PROPFIND" not in scrape
    others = [k for k, v in after.items() if k[0] == "http_requests_total" and ("method", "OTHER") in k[1]]
    assert others and sum(after[k] - before.get(k, 0.0) for k in others) == 1


def test_metric_names_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    from app import metrics

    for metric in (
        metrics.REQUESTS,
        metrics.LATENCY,
        metrics.POOL_SIZE,
        metrics.POOL_IDLE,
        metrics.POOL_WAITING,
        metrics.POOL_MAX,
        metrics.REJECTIONS,
        metrics.SIGN_IN_FAILURES,
        metrics.TOKEN_REJECTIONS,
        metrics.OPEN_STREAMS,
    ):
        name = metric._name + ("_total" if metric._type == "counter" else "")
        assert re.search(rf"`{re.escape(name)}", readme), f"{name} is not in the README"


def test_open_event_streams_gauge(base_settings: Settings) -> None:
    """What the events endpoint wraps each stream in; read back over HTTP."""
    from app import metrics

    with LiveServer(base_settings) as server, fresh(server.url) as http:
        before = value(samples(http.get("/metrics").text), "event_streams_open")
        with metrics.open_stream(), metrics.open_stream():
            during = value(samples(http.get("/metrics").text), "event_streams_open")
        after = value(samples(http.get("/metrics").text), "event_streams_open")
    assert (during - before, after - before) == (2, 0)
