"""The deployment of deploy/: nginx (as an ordinary user, on a free port) in front of two
`python -m app.serve` instances (as `just serve` runs them) sharing the session's PostgreSQL.

The API end to end through it, nginx's own answers (limits) in the service's envelope, then one
instance killed under a bounded load of idempotent requests: none of them gets a 5xx, and the
survivor serves everything. nginx is required in CI (`.ci/run` installs it), skipped elsewhere.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from assertions import assert_error
from conftest import SECRET, bearer, make_token
from harness import Nginx, ServerProcess, nginx_binary, wait_until

LOAD_THREADS = 4
LOAD_S_BEFORE_KILL = 1.0
LOAD_S_AFTER_KILL = 2.0


class Topology:
    def __init__(self, nginx: Nginx, instances: list[ServerProcess]) -> None:
        self.nginx = nginx
        self.instances = instances

    def upstream(self, instance: ServerProcess) -> str:
        return f"127.0.0.1:{instance.port}"


@pytest.fixture(scope="module")
def topology(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    if nginx_binary() is None and not os.environ.get("CI"):
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light); CI runs this")
    work = tmp_path_factory.mktemp("deploy")
    # The failover load is one user writing as fast as it can: WRITE_RATE_PER_MIN (tested in
    # tests/test_limits.py) would refuse it with 429s that have nothing to do with failover. And
    # every test signs up from 127.0.0.1 into this same database: at the default AUTH_RATE_PER_MIN
    # the sign-up here fails whenever the suite made 30 others in the minute before.
    env = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "TRUSTED_PROXIES": "127.0.0.1",
        "WRITE_RATE_PER_MIN": "1000000",
        "AUTH_RATE_PER_MIN": "1000000",
    }
    instances: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            (work / name).mkdir()
            instances.append(ServerProcess(env, work / name / "server.log").start())
        with Nginx(work / "nginx", [f"127.0.0.1:{i.port}" for i in instances]) as nginx:
            yield Topology(nginx, instances)
    finally:
        for instance in instances:
            instance.stop()


@pytest.fixture
def http(topology: Topology) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=topology.nginx.url, timeout=10) as client:
        yield client


def fresh_token(name: str) -> dict[str, str]:
    return bearer(make_token(sub=f"nginx-{name}-{time.monotonic_ns()}"))


def test_the_api_end_to_end_through_nginx(topology: Topology, http: httpx.Client) -> None:
    email = f"nginx-{time.monotonic_ns()}@example.com"
    signup = http.post("/api/auth/signup", json={"email": email, "password": "correct horse", "name": "Ngi"})
    assert signup.status_code == 201, signup.text
    signin = http.post("/api/auth/signin", json={"email": email, "password": "correct horse"})
    assert signin.status_code == 200
    auth = bearer(signin.json()["data"]["access_token"])
    assert http.get("/api/auth/me", headers=auth).json()["data"]["email"] == email

    created = http.post("/api/tasks", json={"title": "Through nginx"}, headers=auth)
    assert created.status_code == 201
    task = created.json()["data"]
    assert created.headers["location"] == f"/api/tasks/{task['id']}"
    listed = http.get("/api/tasks/", headers=auth)  # the seed frontend's trailing slash
    assert listed.status_code == 200 and [t["id"] for t in listed.json()["data"]] == [task["id"]]
    updated = http.put(f"/api/tasks/{task['id']}", json={"title": "Renamed", "description": "d"}, headers=auth)
    assert updated.json()["data"]["title"] == "Renamed"
    assert http.patch(f"/api/tasks/{task['id']}/complete", headers=auth).json()["data"]["completed"] is True
    assert http.delete(f"/api/tasks/{task['id']}", headers=auth).status_code == 204
    assert_error(http.get(f"/api/tasks/{task['id']}", headers=auth), 404)

    # Headers survive the proxy: the request id (a sane client one is echoed end to end), no-store.
    echoed = http.get("/api/tasks", headers={**auth, "X-Request-ID": "edge-check-1"})
    assert echoed.headers["x-request-id"] == "edge-check-1"
    assert echoed.headers["cache-control"] == "no-store"
    own = http.get("/health")
    assert len(own.headers["x-request-id"]) == 32
    assert "server" not in own.headers or "nginx/" not in own.headers["server"]
    assert topology.nginx.uid() != 0, "nginx must not run as root"

    # nginx's access log: the id the service answered with, no query string, both instances used.
    log = topology.nginx.access_log()
    assert {"request_id": "edge-check-1", "path": "/api/tasks", "status": 200}.items() <= log[-2].items()
    assert log[-1]["request_id"] == own.headers["x-request-id"]
    assert {entry["upstream"] for entry in log} >= {topology.upstream(i) for i in topology.instances}


def test_metrics_are_not_served_through_the_edge(topology: Topology, http: httpx.Client) -> None:
    through = http.get("/metrics")
    assert (through.status_code, through.content) == (404, http.get("/metricz").content)
    direct = httpx.get(topology.instances[0].url + "/metrics", timeout=10)  # the scraper's way in
    assert direct.status_code == 200 and "http_requests_total" in direct.text


def test_nginx_answers_its_own_limits_with_the_envelope(http: httpx.Client) -> None:
    auth = fresh_token("limits")
    too_large = http.post("/api/tasks", content=b"x" * (1_048_576 + 1), headers=auth)
    assert_error(too_large, 413)
    assert len(too_large.headers["x-request-id"]) == 32
    headers = http.get("/api/tasks", headers={**auth, "X-Big": "y" * 20_000})
    assert_error(headers, 431)
    assert http.get("/api/tasks", headers=auth).status_code == 200


def test_sign_up_and_sign_in_are_limited_per_address_with_429(http: httpx.Client) -> None:
    # Bodies the service rejects at once (422, no hashing): only nginx's limit is exercised.
    statuses = []
    for _ in range(15):
        response = http.post("/api/auth/signin", json={})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_error(response, 429)
            assert response.headers["retry-after"] == "2"
            assert response.headers["cache-control"] == "no-store"
            assert len(response.headers["x-request-id"]) == 32
    assert set(statuses) == {422, 429} and statuses[-1] == 429, statuses
    assert statuses.count(422) <= 11  # 1 + a burst of 10
    # Only sign-up/sign-in are limited: the rest of the API (and /api/auth/me) still answers.
    auth = fresh_token("after-limit")
    assert http.get("/api/tasks", headers=auth).status_code == 200
    assert http.get("/api/auth/me", headers=auth).status_code == 200


def test_the_events_stream_is_passed_unbuffered(http: httpx.Client) -> None:
    auth = fresh_token("events")
    with http.stream("GET", "/api/events", headers=auth, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        writer = threading.Timer(0.5, lambda: http.post("/api/tasks", json={"title": "event"}, headers=auth))
        writer.start()
        deadline = time.monotonic() + 5
        # Each event must arrive as it is sent, not when a proxy buffer fills or the stream ends.
        for line in stream.iter_lines():
            if line.startswith("event: change"):
                break
            assert time.monotonic() < deadline, "no event within 5 s through nginx"
        writer.join()


def test_killing_one_instance_under_load_fails_no_idempotent_request(topology: Topology, http: httpx.Client) -> None:
    auth = fresh_token("failover")
    ids = [http.post("/api/tasks", json={"title": f"t{n}"}, headers=auth).json()["data"]["id"] for n in range(8)]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    cut: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=topology.nginx.url, timeout=10, headers=auth) as client:
            n = 0
            while not stop.is_set():
                task_id = ids[(worker + n) % len(ids)]
                try:
                    for response in (
                        client.get(f"/api/tasks/{task_id}"),
                        client.get("/api/tasks", params={"limit": 5}),
                        client.put(f"/api/tasks/{task_id}", json={"title": f"t{task_id}"}),
                        client.get("/health"),
                    ):
                        statuses[response.status_code] += 1
                except httpx.RemoteProtocolError as exc:
                    cut.append(repr(exc))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                n += 1

    threads = [threading.Thread(target=load, args=(w,)) for w in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(LOAD_S_BEFORE_KILL)
    victim, survivor = topology.instances
    killed_at = len(topology.nginx.access_log())
    victim.stop()  # SIGKILL: in-flight requests on it are cut off
    time.sleep(LOAD_S_AFTER_KILL)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)

    assert not failures, failures[:5]
    assert not [s for s in statuses if s >= 500], statuses
    # uvicorn writes a response's head and its body separately. When the instance dies between
    # the two, nginx has already passed the head on and cannot replay the request elsewhere: the
    # client sees that one connection cut (never an error status). At most one per request in
    # flight at the kill; every other request in flight is retried on the survivor.
    assert len(cut) <= LOAD_THREADS, cut
    assert all("without sending complete message body" in c for c in cut), cut
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 100, statuses

    # The survivor serves everything now, writes included.
    created = http.post("/api/tasks", json={"title": "after the kill"}, headers=auth)
    assert created.status_code == 201
    new_id = created.json()["data"]["id"]
    assert http.patch(f"/api/tasks/{new_id}/complete", headers=auth).status_code == 200
    assert http.delete(f"/api/tasks/{new_id}", headers=auth).status_code == 204
    for _ in range(10):
        assert http.get("/api/tasks", headers=auth).status_code == 200
    wait_until(lambda: len(topology.nginx.access_log()) > killed_at, timeout=5)
    after = [entry for entry in topology.nginx.access_log()[killed_at:] if entry["upstream"]]
    last_hops = {entry["upstream"].rsplit(", ", 1)[-1] for entry in after[-20:]}
    assert last_hops == {topology.upstream(survivor)}, last_hops


def test_deploy_files_name_nothing_outside_the_repository() -> None:
    deploy = Path(__file__).resolve().parent.parent / "deploy"
    for path in deploy.iterdir():
        assert "/etc/" not in path.read_text(), path
