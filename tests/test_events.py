"""Live updates, `GET /api/events`, end to end over real HTTP and PostgreSQL: changes arrive within
a second (through the same server, another worker process, another instance, PgBouncer), resume
loses nothing, tickets, the per-user cap, heartbeats, and shutdown with streams open."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import SECRET, LiveServer, User
from harness import ServerProcess, recording, wait_until

from app.config import Settings

ARRIVAL_S = 1.0  # the contract's "within 1 s"


class Sse:
    """One event stream read in a background thread: its blocks (dicts of field -> value, comments
    under ""), as they arrive. On a plain socket: closing it from the test must really close the
    connection (an HTTP client's close from another thread waits for the blocked read)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        target = parts.path + ("?" + urlencode(params) if params else "")
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        head = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode())
        self.file = self.sock.makefile("rb")
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().rstrip("\r\n")) != "":
            name, _, value = line.partition(":")
            self.headers[name.lower()] = value.strip()
        self.blocks: queue.Queue[dict[str, str] | None] = queue.Queue()
        if self.status == 200:
            self.sock.settimeout(None)
            threading.Thread(target=self._read, daemon=True).start()
        else:
            length = int(self.headers.get("content-length", "0"))
            self.body = self.file.read(length)
            self.close()

    def _lines(self) -> Iterator[str]:
        """The chunked body's lines."""
        pending = b""
        while (size := int(self.file.readline().strip() or b"0", 16)) > 0:
            pending += self.file.read(size)
            self.file.readline()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode()

    def _read(self) -> None:
        block: dict[str, str] = {}
        try:
            for line in self._lines():
                if not line:
                    if block:
                        self.blocks.put(block)
                    block = {}
                    continue
                name, _, value = line.partition(":")
                block[name] = value.removeprefix(" ")
        except (OSError, ValueError):
            pass
        self.blocks.put(None)  # the stream ended

    def next(self, timeout: float = ARRIVAL_S) -> dict[str, str] | None:
        return self.blocks.get(timeout=timeout)

    def next_change(self, timeout: float = ARRIVAL_S) -> dict[str, str]:
        """The next `event: change` (skipping the opening `id:` and heartbeats) within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.blocks.get(timeout=max(0.001, deadline - time.monotonic()))
            assert block is not None, "the stream ended"
            if block.get("event") == "change":
                return block

    def opening_id(self) -> str:
        block = self.next(timeout=5)
        assert block is not None and "id" in block and "event" not in block, block
        return block["id"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def __enter__(self) -> Sse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def events_url(server: Any) -> str:
    return f"{server.url}/api/events"


def change_of(block: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(block["data"])
    return data


def create(url: str, user: User, title: str = "t") -> dict[str, Any]:
    response = httpx.post(f"{url}/api/tasks", json={"title": title}, headers=user.headers, timeout=10)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


def test_every_kind_of_change_arrives_within_a_second_as_the_feed_gives_it(live: LiveServer, user: User) -> None:
    with Sse(events_url(live), user.headers) as sse:
        assert sse.status == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert sse.headers["cache-control"] == "no-store"
        start = sse.opening_id()
        task = create(live.url, user, "first")
        created = sse.next_change()
        assert change_of(created) == {"op": "upsert", "task": task}
        httpx.patch(f"{live.url}/api/tasks/{task['id']}/complete", headers=user.headers)
        toggled = change_of(sse.next_change())
        assert toggled["task"]["completed"] is True and toggled["task"]["version"] == 2
        httpx.put(f"{live.url}/api/tasks/{task['id']}", json={"title": "renamed"}, headers=user.headers)
        assert change_of(sse.next_change())["task"]["title"] == "renamed"
        assert httpx.delete(f"{live.url}/api/tasks/{task['id']}", headers=user.headers).status_code == 204
        deleted = sse.next_change()
        assert change_of(deleted) == {"op": "delete", "id": task["id"]}
    # The feed from the stream's first id gives the same changes (the ids are feed cursors).
    feed = httpx.get(f"{live.url}/api/tasks/changes", params={"since": start}, headers=user.headers).json()
    assert feed["data"] == [{"op": "delete", "id": task["id"]}]
    after = httpx.get(f"{live.url}/api/tasks/changes", params={"since": deleted["id"]}, headers=user.headers)
    assert after.json()["data"] == []


def test_head_answers_the_streams_headers_and_ends(live: LiveServer, user: User) -> None:
    response = httpx.head(events_url(live), headers=user.headers, timeout=5)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"].startswith("text/event-stream")
    assert_error(httpx.get(events_url(live), timeout=5), 401)  # (HEAD of that: the same status)
    assert httpx.head(events_url(live), timeout=5).status_code == 401


def test_a_stream_sees_only_its_callers_changes(live: LiveServer, user: User, other_user: User) -> None:
    with Sse(events_url(live), user.headers) as sse:
        sse.opening_id()
        create(live.url, other_user, "not yours")
        mine = create(live.url, user, "yours")
        assert change_of(sse.next_change())["task"]["id"] == mine["id"]


def test_a_burst_of_changes_arrives_whole_and_in_order(live: LiveServer, user: User) -> None:
    with Sse(events_url(live), user.headers) as sse:
        sse.opening_id()
        ids = [create(live.url, user, f"burst {n}")["id"] for n in range(30)]
        got = [change_of(sse.next_change(timeout=5))["task"]["id"] for _ in ids]
        assert got == ids


def test_resume_after_a_dropped_stream_loses_nothing(live: LiveServer, user: User) -> None:
    with Sse(events_url(live), user.headers) as sse:
        sse.opening_id()
        first = create(live.url, user, "seen")
        last_id = sse.next_change()["id"]
    # While no stream is open: changes that must come with the resumed one.
    missed = [create(live.url, user, f"missed {n}")["id"] for n in range(3)]
    httpx.patch(f"{live.url}/api/tasks/{first['id']}/complete", headers=user.headers)
    expected = [*missed, first["id"]]
    with Sse(events_url(live), {**user.headers, "Last-Event-ID": last_id}) as sse:
        sse.opening_id()
        assert [change_of(sse.next_change())["task"]["id"] for _ in expected] == expected
    # `since` does the same (and Last-Event-ID, sent by a reconnecting EventSource, wins over it).
    with Sse(events_url(live), user.headers, {"since": last_id}) as sse:
        sse.opening_id()
        assert [change_of(sse.next_change())["task"]["id"] for _ in expected] == expected
    # A stream that received nothing still gave a place to resume from: its opening id.
    with Sse(events_url(live), user.headers) as sse:
        opening = sse.opening_id()
    later = create(live.url, user, "while away")
    with Sse(events_url(live), {**user.headers, "Last-Event-ID": opening}) as sse:
        sse.opening_id()
        assert change_of(sse.next_change())["task"]["id"] == later["id"]


def test_a_bad_or_expired_cursor_is_410_before_the_stream_starts(live: LiveServer, user: User) -> None:
    for headers, params in (({"Last-Event-ID": "not-a-cursor"}, None), ({}, {"since": "nope"})):
        response = httpx.get(events_url(live), headers={**user.headers, **headers}, params=params, timeout=5)
        assert_error(response, 410, "CURSOR_EXPIRED")


def test_without_credentials_or_with_a_bad_ticket_it_is_401(live: LiveServer, user: User) -> None:
    assert_error(httpx.get(events_url(live), timeout=5), 401, "UNAUTHORIZED")
    for ticket in ("", "made-up", "x" * 500):
        response = httpx.get(events_url(live), params={"ticket": ticket}, timeout=5)
        assert_error(response, 401, "UNAUTHORIZED")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_ticket_opens_one_stream_once_and_only_that(live: LiveServer, user: User, db: Any) -> None:
    issued = httpx.post(f"{live.url}/api/events/ticket", headers=user.headers, timeout=5)
    assert issued.status_code == 201
    body = issued.json()
    assert set(body["data"]) == {"ticket", "expires_in"} and body["data"]["expires_in"] == 60
    ticket = body["data"]["ticket"]
    # Only the events stream accepts it.
    assert_error(httpx.get(f"{live.url}/api/tasks", params={"ticket": ticket}, timeout=5), 401, "UNAUTHORIZED")
    with Sse(events_url(live), params={"ticket": ticket}) as sse:
        assert sse.status == 200
        sse.opening_id()
        task = create(live.url, user, "via ticket")
        assert change_of(sse.next_change())["task"]["id"] == task["id"]
    # Single use.
    assert_error(httpx.get(events_url(live), params={"ticket": ticket}, timeout=5), 401, "UNAUTHORIZED")
    # Expired (60 s; here moved into the past), and never stored in the clear.
    expiring = httpx.post(f"{live.url}/api/events/ticket", headers=user.headers, timeout=5).json()["data"]["ticket"]
    stored = db.execute("SELECT hash FROM event_tickets WHERE user_id = %s", (user.id,)).fetchall()
    assert len(stored) == 1 and expiring.encode() not in bytes(stored[0][0])
    db.execute("UPDATE event_tickets SET expires_at = now() - interval '1 second' WHERE user_id = %s", (user.id,))
    assert_error(httpx.get(events_url(live), params={"ticket": expiring}, timeout=5), 401, "UNAUTHORIZED")
    assert httpx.post(f"{live.url}/api/events/ticket", timeout=5).status_code == 401


def test_expired_tickets_and_dead_workers_streams_are_purged(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, user: User, db: Any
) -> None:
    db.execute(
        "INSERT INTO event_tickets (hash, user_id, expires_at) VALUES (%s, %s, now() - interval '1 second')",
        (user.id.encode(), user.id),
    )
    db.execute(
        "INSERT INTO event_streams (stream_id, user_id, worker, expires_at)"
        " VALUES (gen_random_uuid(), %s, 'dead', now() - interval '1 second')",
        (user.id,),
    )
    serve(base_settings)  # every worker purges when it starts
    for table in ("event_tickets", "event_streams"):
        query = f"SELECT count(*) FROM {table} WHERE user_id = %s"
        wait_until(lambda q=query: db.execute(q, (user.id,)).fetchone() == (0,), timeout=10, what=f"{table} purged")


def test_heartbeats_keep_an_idle_stream_alive(serve: Callable[[Settings], LiveServer], base_settings: Settings) -> None:
    server = serve(base_settings.with_(events_heartbeat_s=0.3))
    user = User()
    with Sse(events_url(server), user.headers) as sse:
        sse.opening_id()
        beats = [sse.next(timeout=2) for _ in range(3)]
        assert all(block is not None and set(block) == {""} for block in beats), beats  # comment lines


def test_an_idle_stream_holds_no_pool_connection_and_a_worker_one_listener(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, db: Any
) -> None:
    server = serve(base_settings)
    user = User()
    streams = [Sse(events_url(server), user.headers) for _ in range(3)]
    try:
        for sse in streams:
            sse.opening_id()
        time.sleep(1.0)  # past the re-read after opening
        pool = server.server.config.app.state.streams.pool
        stats = pool.get_stats()
        assert stats["pool_size"] - stats["pool_available"] == 0, stats
        workers = db.execute("SELECT DISTINCT worker FROM event_streams WHERE user_id = %s", (user.id,)).fetchall()
        assert len(workers) == 1
        listeners = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = left('tasks-api-listener ' || %s, 63)",
            (workers[0][0],),
        ).fetchone()
        assert listeners == (1,)
    finally:
        for sse in streams:
            sse.close()


def test_a_lost_listener_reconnects_and_its_streams_catch_up(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, db: Any
) -> None:
    """Notifications sent while the listener was away are lost; the streams read once it is back."""
    server = serve(base_settings.with_(events_heartbeat_s=30))  # no heartbeat read within the test
    user = User()
    with Sse(events_url(server), user.headers) as sse:
        sse.opening_id()
        time.sleep(1.0)  # past the re-read after opening
        worker = server.server.config.app.state.streams.worker
        killed = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = left('tasks-api-listener ' || %s, 63)",
            (worker,),
        ).fetchall()
        assert killed == [(True,)]
        task = create(server.url, user, "while the listener was away")
        assert change_of(sse.next_change(timeout=5))["task"]["id"] == task["id"]
        # And it listens again.
        wait_until(lambda: server.server.config.app.state.streams.listening, timeout=5, what="listening again")
        again = create(server.url, user, "after")
        assert change_of(sse.next_change())["task"]["id"] == again["id"]


def test_a_write_begun_before_the_stream_registered_still_arrives(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, database_url: str
) -> None:
    """The trigger ran before the stream's row existed (no NOTIFY), the commit comes after the
    stream's first read: the re-read shortly after opening delivers it."""
    server = serve(base_settings.with_(events_heartbeat_s=30))  # no heartbeat read within the test
    user = User()
    task = create(server.url, user, "before")
    with psycopg.connect(database_url) as writer:
        writer.execute(
            "UPDATE tasks SET title = 'racing', version = version + 1, change_xid = pg_current_xact_id()"
            " WHERE user_id = %s AND id = %s",
            (user.id, task["id"]),
        )
        with Sse(events_url(server), user.headers) as sse:
            sse.opening_id()
            writer.commit()
            change = change_of(sse.next_change(timeout=2))
            assert (change["task"]["id"], change["task"]["title"]) == (task["id"], "racing")


def test_the_stream_cap_across_instances_429_and_a_closed_stream_frees_its_place(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, db: Any
) -> None:
    capped = base_settings.with_(events_max_streams_per_user=2)
    one, two = serve(capped), serve(capped)
    user = User()
    first = Sse(events_url(one), user.headers)
    second = Sse(events_url(two), user.headers)
    try:
        assert (first.status, second.status) == (200, 200)
        for server in (one, two):
            refused = httpx.get(events_url(server), headers=user.headers, timeout=5)
            assert_error(refused, 429, "RATE_LIMITED")
            assert int(refused.headers["retry-after"]) >= 1
        metrics = httpx.get(f"{one.url}/metrics", timeout=5).text
        assert 'limit_rejections_total{limit="event_streams"}' in metrics
        # Another user is not affected.
        with Sse(events_url(one), User().headers) as other:
            assert other.status == 200
        first.close()
        wait_until(
            lambda: Sse(events_url(two), user.headers).status == 200 or None,
            timeout=5,
            what="the closed stream's place freed",
        )
    finally:
        first.close()
        second.close()
        db.execute("DELETE FROM event_streams WHERE user_id = %s", (user.id,))


def test_no_notification_unless_the_user_has_a_stream_open(database_url: str, user: User) -> None:
    """The trigger's condition (a NOTIFY serializes commits): only users with a stream are notified."""
    with (
        psycopg.connect(database_url, autocommit=True) as listener,
        psycopg.connect(database_url, autocommit=True) as w,
    ):
        listener.execute("LISTEN task_changes")
        w.execute("INSERT INTO users (id) VALUES (%s)", (user.id,))
        w.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'quiet')", (user.id,))
        assert list(listener.notifies(timeout=0.3)) == []
        w.execute(
            "INSERT INTO event_streams (stream_id, user_id, worker, expires_at)"
            " VALUES (gen_random_uuid(), %s, 'test', now() + interval '1 minute')",
            (user.id,),
        )
        w.execute("UPDATE tasks SET title = 'same version' WHERE user_id = %s", (user.id,))
        assert list(listener.notifies(timeout=0.3)) == []  # no version change: no change in the feed
        w.execute("UPDATE tasks SET version = version + 1 WHERE user_id = %s", (user.id,))
        assert [n.payload for n in listener.notifies(timeout=2, stop_after=1)] == [user.id]
        w.execute("DELETE FROM event_streams WHERE user_id = %s", (user.id,))


# --- real processes: other workers, other instances, PgBouncer, shutdown ---------------------------


@pytest.fixture(scope="module")
def instances(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two instances of `python -m app.serve` on the same database, the first with two workers."""
    work = tmp_path_factory.mktemp("events")
    env = {"DATABASE_URL": database_url, "JWT_SECRET": SECRET, "EVENTS_MAX_STREAMS_PER_USER": "20"}
    started: list[ServerProcess] = []
    try:
        for name, workers in (("a", "2"), ("b", "1")):
            (work / name).mkdir()
            started.append(ServerProcess({**env, "WORKERS": workers}, work / name / "server.log").start())
        yield started
    finally:
        for server in started:
            server.stop()


def test_a_change_through_another_worker_process_arrives_within_a_second(
    instances: list[ServerProcess], db: Any
) -> None:
    """Streams on both workers of one instance (their rows say which), then writes: each stream gets
    each change, so every change crossed from one worker to the other at least once."""
    server = instances[0]
    user = User()
    kept: dict[str, Sse] = {}
    try:
        for _ in range(40):
            sse = Sse(events_url(server), user.headers)
            sse.opening_id()
            workers = {w for (w,) in db.execute("SELECT worker FROM event_streams WHERE user_id = %s", (user.id,))}
            new = workers - set(kept)
            if new:
                kept[new.pop()] = sse
            else:
                sse.close()
                wait_until(lambda: count_streams(db, user) == len(kept), timeout=5, what="the extra stream closed")
            if len(kept) == 2:
                break
        assert len(kept) == 2, "could not open streams on both workers"
        for n in range(4):
            task = create(server.url, user, f"cross-worker {n}")
            for sse in kept.values():
                assert change_of(sse.next_change())["task"]["id"] == task["id"]
    finally:
        for sse in kept.values():
            sse.close()


def count_streams(db: Any, user: User) -> int:
    row = db.execute("SELECT count(*) FROM event_streams WHERE user_id = %s", (user.id,)).fetchone()
    return int(row[0])


def test_a_change_through_another_instance_arrives_within_a_second(instances: list[ServerProcess]) -> None:
    user = User()
    with Sse(events_url(instances[1]), user.headers) as sse:
        sse.opening_id()
        task = create(instances[0].url, user, "other instance")
        assert change_of(sse.next_change())["task"]["id"] == task["id"]


def test_events_behind_pgbouncer_with_a_direct_listen_url(pooled_settings: Settings, database_url: str) -> None:
    """DATABASE_URL through PgBouncer in transaction mode (where LISTEN does not work),
    DATABASE_LISTEN_URL direct: streams work, the tickets too."""
    settings = pooled_settings.with_(database_listen_url=database_url)
    user = User()
    with LiveServer(settings) as server:
        ticket = httpx.post(f"{server.url}/api/events/ticket", headers=user.headers, timeout=5).json()["data"]
        with Sse(events_url(server), params={"ticket": ticket["ticket"]}) as sse:
            assert sse.status == 200
            sse.opening_id()
            time.sleep(0.2)
            task = create(server.url, user, "pooled")
            assert change_of(sse.next_change())["task"]["id"] == task["id"]


def test_listening_through_a_pooler_is_warned_about(pooled_settings: Settings) -> None:
    with recording("app.events") as log, LiveServer(pooled_settings):
        pass
    assert "DATABASE_LISTEN_URL" in log.text()


def test_sigterm_with_open_streams_exits_promptly_and_finishes_a_request_in_flight(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess({"DATABASE_URL": database_url, "JWT_SECRET": SECRET}, tmp_path / "server.log").start()
    try:
        user = User()
        ticket = httpx.post(f"{server.url}/api/events/ticket", headers=user.headers, timeout=5).json()["data"]["ticket"]
        streams = [Sse(events_url(server), user.headers) for _ in range(2)]
        streams.append(Sse(events_url(server), params={"ticket": ticket}))
        assert httpx.get(events_url(server), params={"ticket": ticket}, timeout=5).status_code == 401
        for sse in streams:
            sse.opening_id()
        # A normal request in flight: its head sent, its body not yet.
        body = json.dumps({"title": "in flight"}).encode()
        request = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        request.sendall(
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (user.token.encode(), len(body))
        )
        time.sleep(0.3)
        began = time.monotonic()
        server.terminate()
        # Every stream ends at once, cleanly (the end of the chunked body, not a cut connection).
        for sse in streams:
            while (block := sse.next(timeout=3)) is not None:
                assert block.get("event") != "change"
        request.sendall(body)
        answer = request.recv(65536)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert server.wait(timeout=5) == 0
        assert time.monotonic() - began < 5  # the grace period is 10 s
        assert ticket not in server.output()  # access lines carry the path, never the query
        assert "GET /api/events" in server.output() or '"path":"/api/events"' in server.output()
    finally:
        server.stop()
