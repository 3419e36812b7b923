"""The changes feed `GET /api/tasks/changes`: snapshot, deltas, tombstones, cursors, concurrency."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from assertions import assert_error
from conftest import LiveServer, User
from harness import wait_until

from app.config import Settings
from app.sync.changes import Cursor


class Replica:
    """What a syncing client holds: tasks by id, and its cursor."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.versions_seen: dict[int, list[int]] = {}

    def pull(self, http: httpx.Client, user: User, limit: int = 500) -> int:
        """Ask until caught up; returns how many changes were applied."""
        applied = 0
        while True:
            params: dict[str, Any] = {"limit": limit}
            if self.cursor is not None:
                params["since"] = self.cursor
            response = http.get("/api/tasks/changes", params=params, headers=user.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            for change in body["data"]:
                if change["op"] == "upsert":
                    task = change["task"]
                    self.versions_seen.setdefault(task["id"], []).append(task["version"])
                    self.tasks[task["id"]] = task
                else:
                    assert set(change) == {"op", "id"}
                    self.tasks.pop(change["id"], None)
                applied += 1
            self.cursor = body["meta"]["cursor"]
            if not body["meta"]["has_more"]:
                return applied


def server_tasks(db: psycopg.Connection[Any], user: User) -> dict[int, tuple[Any, ...]]:
    rows = db.execute(
        "SELECT id, title, description, completed, version FROM tasks WHERE user_id = %s", (user.id,)
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def replica_tasks(replica: Replica) -> dict[int, tuple[Any, ...]]:
    return {
        task_id: (t["title"], t["description"], t["completed"], t["version"]) for task_id, t in replica.tasks.items()
    }


def test_snapshot_then_deltas_with_tombstones(client: httpx.Client, user: User) -> None:
    ids = [
        client.post("/api/tasks", json={"title": f"t{i}"}, headers=user.headers).json()["data"]["id"] for i in range(5)
    ]
    first = client.get("/api/tasks/changes", params={"limit": 2}, headers=user.headers)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"data", "meta"} and set(body["meta"]) == {"cursor", "has_more"}
    assert body["meta"]["has_more"] is True
    assert [c["task"]["id"] for c in body["data"]] == ids[:2]  # oldest first
    assert all(c["op"] == "upsert" for c in body["data"])
    replica = Replica()
    replica.pull(client, user, limit=2)
    assert sorted(replica.tasks) == ids
    # Deltas: a change, a deletion, a creation; nothing else is repeated.
    client.put(f"/api/tasks/{ids[0]}", json={"title": "renamed"}, headers=user.headers)
    client.delete(f"/api/tasks/{ids[1]}", headers=user.headers)
    new = client.post("/api/tasks", json={"title": "new"}, headers=user.headers).json()["data"]["id"]
    delta = client.get("/api/tasks/changes", params={"since": replica.cursor}, headers=user.headers).json()
    assert delta["data"] == [
        {"op": "upsert", "task": client.get(f"/api/tasks/{ids[0]}", headers=user.headers).json()["data"]},
        {"op": "delete", "id": ids[1]},
        {"op": "upsert", "task": client.get(f"/api/tasks/{new}", headers=user.headers).json()["data"]},
    ]
    assert delta["meta"]["has_more"] is False
    # Caught up: an empty page, and the cursor still works.
    again = client.get("/api/tasks/changes", params={"since": delta["meta"]["cursor"]}, headers=user.headers).json()
    assert again["data"] == [] and again["meta"]["has_more"] is False


def test_unchanged_writes_and_refused_writes_are_not_changes(client: httpx.Client, user: User) -> None:
    task_id = client.post("/api/tasks", json={"title": "a"}, headers=user.headers).json()["data"]["id"]
    replica = Replica()
    replica.pull(client, user)
    client.put(f"/api/tasks/{task_id}", json={"title": "a"}, headers=user.headers)  # same values
    client.patch(f"/api/tasks/{task_id}/complete", json={"completed": False}, headers=user.headers)
    client.put(f"/api/tasks/{task_id}", json={"title": "b"}, headers={**user.headers, "If-Match": '"9"'})  # 412
    client.delete("/api/tasks/999999999", headers=user.headers)  # 404
    assert replica.pull(client, user) == 0


def test_a_new_user_gets_an_empty_snapshot_and_isolation_holds(
    client: httpx.Client, user: User, other_user: User
) -> None:
    client.post("/api/tasks", json={"title": "theirs"}, headers=other_user.headers)
    body = client.get("/api/tasks/changes", headers=user.headers).json()
    assert body["data"] == [] and body["meta"]["has_more"] is False
    replica = Replica()
    replica.pull(client, user)
    client.post("/api/tasks", json={"title": "theirs too"}, headers=other_user.headers)
    assert replica.pull(client, user) == 0


def test_the_route_is_not_taken_for_a_task_id(client: httpx.Client, user: User) -> None:
    assert client.get("/api/tasks/changes/", headers=user.headers).status_code == 200
    assert_error(client.get("/api/tasks/changes"), 401)


@pytest.mark.parametrize("since", ["garbage", "", "WzEsMiwzXQ", "W-1LDEsMV0", "%00", "x" * 200])
def test_an_unknown_cursor_is_410(client: httpx.Client, user: User, since: str) -> None:
    assert_error(client.get("/api/tasks/changes", params={"since": since}, headers=user.headers), 410)


def test_a_cursor_from_the_future_is_410(client: httpx.Client, user: User) -> None:
    cursor = client.get("/api/tasks/changes", headers=user.headers).json()["meta"]["cursor"]
    decoded = Cursor.decode(cursor)
    future = msgspec.structs.replace(decoded, start="999999999999:999999999999:").encode()
    assert_error(client.get("/api/tasks/changes", params={"since": future}, headers=user.headers), 410)


@pytest.mark.parametrize("limit", [0, 1001, -1, "x"])
def test_limit_out_of_range_is_422(client: httpx.Client, user: User, limit: Any) -> None:
    assert_error(client.get("/api/tasks/changes", params={"limit": limit}, headers=user.headers), 422)


def test_an_old_cursor_expires_and_old_tombstones_are_purged(
    serve: Any, base_settings: Settings, user: User, db: psycopg.Connection[Any]
) -> None:
    server = serve(base_settings.with_(sync_tombstone_ttl_s=1))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        task_id = http.post("/api/tasks", json={"title": "x"}, headers=user.headers).json()["data"]["id"]
        cursor = http.get("/api/tasks/changes", headers=user.headers).json()["meta"]["cursor"]
        http.delete(f"/api/tasks/{task_id}", headers=user.headers)
        time.sleep(1.5)
        assert_error(http.get("/api/tasks/changes", params={"since": cursor}, headers=user.headers), 410)
    # Tombstones are kept for the TTL plus an hour's margin: age this one past both.
    db.execute("UPDATE task_tombstones SET deleted_at = now() - interval '2 hours' WHERE user_id = %s", (user.id,))
    serve(base_settings.with_(sync_tombstone_ttl_s=1))  # every worker purges when it starts

    def tombstones() -> int:
        row = db.execute("SELECT count(*) FROM task_tombstones WHERE user_id = %s", (user.id,)).fetchone()
        assert row is not None
        return int(row[0])

    wait_until(lambda: tombstones() == 0, timeout=10, what="the tombstone purge")


def test_concurrent_writers_and_a_polling_reader_converge(
    live: LiveServer, user: User, db: psycopg.Connection[Any]
) -> None:
    """Writers commit out of order; a reader polling all along ends with exactly the table."""
    stop = threading.Event()
    errors: list[str] = []
    seed_ids: list[int] = []
    with httpx.Client(base_url=live.url, timeout=30) as http:
        for i in range(10):
            seed_ids.append(http.post("/api/tasks", json={"title": f"s{i}"}, headers=user.headers).json()["data"]["id"])

    def writer(n: int) -> None:
        rng = random.Random(n)
        mine = list(seed_ids)
        with httpx.Client(base_url=live.url, timeout=30) as http:
            while not stop.is_set():
                action = rng.random()
                if action < 0.35 or not mine:
                    r = http.post("/api/tasks", json={"title": f"w{n}"}, headers=user.headers)
                    if r.status_code == 201:
                        mine.append(r.json()["data"]["id"])
                elif action < 0.6:
                    r = http.patch(f"/api/tasks/{rng.choice(mine)}/complete", headers=user.headers)
                elif action < 0.85:
                    r = http.put(
                        f"/api/tasks/{rng.choice(mine)}", json={"title": f"e{rng.random()}"}, headers=user.headers
                    )
                else:
                    victim = rng.choice(mine)
                    r = http.delete(f"/api/tasks/{victim}", headers=user.headers)
                    mine.remove(victim)
                if r.status_code not in (200, 201, 204, 404):
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    replica = Replica()
    with httpx.Client(base_url=live.url, timeout=30) as http:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 4
        polls = 0
        while time.monotonic() < deadline:
            replica.pull(http, user, limit=7)  # small pages: paging under concurrent writes too
            polls += 1
        stop.set()
        for thread in threads:
            thread.join()
        replica.pull(http, user, limit=7)
    assert not errors, errors[:5]
    assert polls > 5
    assert replica_tasks(replica) == server_tasks(db, user)
    for task_id, versions in replica.versions_seen.items():  # no change seen twice, none out of order
        assert versions == sorted(set(versions)), (task_id, versions)
