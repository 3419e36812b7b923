"""The task API end to end, run twice: straight to PostgreSQL, and through PgBouncer in transaction
pooling mode with prepared statements off (`DB_PREPARE_THRESHOLD` empty), as on Neon's pooled
endpoint. Every statement may land on a different server connection there: anything that relied
on session state (prepared statements, SET, the session time zone) would break here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import LiveServer, User

TASK_KEYS = {
    *("id", "user_id", "title", "description", "completed", "created_at", "updated_at", "version"),
    *("priority", "tags", "due_at", "recurrence", "completed_at"),
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
def api(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    server: LiveServer = request.getfixturevalue("live" if request.param == "direct" else "live_pooled")
    with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
        yield http


def create(api: httpx.Client, user: User, **body: Any) -> dict[str, Any]:
    response = api.post("/api/tasks", json={"title": "a task", **body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def titles(api: httpx.Client, user: User, **params: Any) -> list[str]:
    response = api.get("/api/tasks", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["data"]]


def test_create_returns_the_task_with_location_and_defaults(api: httpx.Client, user: User) -> None:
    response = api.post("/api/tasks", json={"title": "  Buy milk  "}, headers=user.headers)
    assert response.status_code == 201
    task = response.json()["data"]
    assert set(task) == TASK_KEYS
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert (task["title"], task["description"], task["completed"]) == ("Buy milk", None, False)
    assert task["user_id"] == user.id
    assert RFC3339_UTC.match(task["created_at"]) and task["created_at"] == task["updated_at"]
    assert response.headers["cache-control"] == "no-store"


def test_get_put_patch_delete_round_trip(api: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    task = create(api, user, description="two litres")
    url = f"/api/tasks/{task['id']}"
    assert api.get(url, headers=user.headers).json()["data"] == task

    renamed = api.put(url, json={"title": "Buy oat milk"}, headers=user.headers).json()["data"]
    assert (renamed["title"], renamed["description"]) == ("Buy oat milk", "two litres")
    assert renamed["updated_at"] > task["updated_at"] and renamed["created_at"] == task["created_at"]
    same = api.put(url, json={"title": "Buy oat milk"}, headers=user.headers).json()["data"]
    assert same["updated_at"] == renamed["updated_at"]  # nothing changed, nothing moves
    cleared = api.put(url, json={"title": "x", "description": None, "completed": True}, headers=user.headers)
    assert (cleared.json()["data"]["description"], cleared.json()["data"]["completed"]) == (None, True)

    toggled = api.patch(f"{url}/complete", headers=user.headers).json()["data"]
    assert toggled["completed"] is False
    for _ in range(2):  # setting is idempotent
        set_true = api.patch(f"{url}/complete", json={"completed": True}, headers=user.headers)
        assert set_true.json()["data"]["completed"] is True
    assert api.patch(f"{url}/complete", json=None, headers=user.headers).json()["data"]["completed"] is False

    deleted = api.delete(url, headers=user.headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_error(api.delete(url, headers=user.headers), 404)
    assert_error(api.get(url, headers=user.headers), 404)
    assert db.execute("SELECT count(*) FROM tasks WHERE id = %s", (task["id"],)).fetchone() == (0,)


def test_timestamps_are_utc_whatever_the_session_time_zone(
    api: httpx.Client, user: User, db: psycopg.Connection[Any]
) -> None:
    task = create(api, user)
    stored = db.execute("SELECT created_at FROM tasks WHERE id = %s", (task["id"],)).fetchone()
    assert stored is not None
    assert task["created_at"] == stored[0].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_list_filters_sorts_and_pages(api: httpx.Client, user: User) -> None:
    for title in ["alpha", "bravo", "charlie 100%", "delta_x", "echo"]:
        create(api, user, title=title, completed=title in {"bravo", "echo"})
    assert titles(api, user) == ["echo", "delta_x", "charlie 100%", "bravo", "alpha"]
    assert titles(api, user, sort="created_at") == ["alpha", "bravo", "charlie 100%", "delta_x", "echo"]
    assert titles(api, user, sort="-title") == ["echo", "delta_x", "charlie 100%", "bravo", "alpha"]
    assert titles(api, user, completed="true") == ["echo", "bravo"]
    assert titles(api, user, status="pending") == ["delta_x", "charlie 100%", "alpha"]
    assert titles(api, user, completed="true", status="pending") == []
    assert titles(api, user, q="%") == ["charlie 100%"]
    assert titles(api, user, q="_") == ["delta_x"]
    assert titles(api, user, q="BRAV") == ["bravo"]
    assert titles(api, user, q="") == titles(api, user)

    page = api.get("/api/tasks", params={"limit": 2, "offset": 1}, headers=user.headers).json()
    assert [t["title"] for t in page["data"]] == ["delta_x", "charlie 100%"]
    assert page["meta"]["total"] == 5 and page["meta"]["offset"] == 1 and page["meta"]["next_cursor"]
    past_end = api.get("/api/tasks", params={"offset": 50}, headers=user.headers).json()
    assert past_end == {"data": [], "meta": {"total": 5, "limit": 1000, "offset": 50, "next_cursor": None}}


def test_every_statement_is_scoped_to_the_caller(api: httpx.Client, user: User, other_user: User) -> None:
    task = create(api, user, title="private")
    url = f"/api/tasks/{task['id']}"
    missing = api.get("/api/tasks/9223372036854775807", headers=other_user.headers)
    for response in (
        api.get(url, headers=other_user.headers),
        api.put(url, json={"title": "stolen"}, headers=other_user.headers),
        api.patch(f"{url}/complete", headers=other_user.headers),
        api.delete(url, headers=other_user.headers),
    ):
        assert_error(response, 404)
        assert response.content == missing.content
    assert titles(api, other_user) == []
    assert api.get(url, headers=user.headers).json()["data"] == task


def test_invalid_input_is_422_with_details(api: httpx.Client, user: User) -> None:
    task = create(api, user)
    for body, field in [
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "ok", "completed": "yes"}, "completed"),
        ({"title": "ok", "description": "x" * 10_001}, "description"),
    ]:
        for response in (
            api.post("/api/tasks", json=body, headers=user.headers),
            api.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers),
        ):
            assert assert_error(response, 422)["details"][0]["field"] == field
    assert_error(api.get("/api/tasks", params={"limit": 0}, headers=user.headers), 422)


def test_the_same_statements_many_times(api: httpx.Client, user: User) -> None:
    """Past psycopg's prepare threshold (5): with prepared statements on, PgBouncer in transaction
    mode would route an EXECUTE to a connection that never saw the PREPARE."""
    task = create(api, user)
    for n in range(25):
        assert api.get(f"/api/tasks/{task['id']}", headers=user.headers).status_code == 200
        assert api.get("/api/tasks", params={"q": "task"}, headers=user.headers).status_code == 200
        assert api.patch(f"/api/tasks/{task['id']}/complete", headers=user.headers).status_code == 200
        assert api.put(f"/api/tasks/{task['id']}", json={"title": f"n{n}"}, headers=user.headers).status_code == 200


def test_concurrent_toggles_and_creates(api: httpx.Client, db: psycopg.Connection[Any]) -> None:
    owner = User()
    task = create(api, owner)
    toggles = 41
    barrier = threading.Barrier(toggles)

    def toggle(_: int) -> int:
        barrier.wait()
        return api.patch(f"/api/tasks/{task['id']}/complete", headers=owner.headers).status_code

    with ThreadPoolExecutor(toggles) as pool:
        assert set(pool.map(toggle, range(toggles))) == {200}
    assert api.get(f"/api/tasks/{task['id']}", headers=owner.headers).json()["data"]["completed"] is True

    users = [User() for _ in range(10)]
    jobs = [(u, n) for u in users for n in range(15)]

    def create_one(job: tuple[User, int]) -> int:
        user, n = job
        return api.post("/api/tasks", json={"title": f"#{n}"}, headers=user.headers).status_code

    with ThreadPoolExecutor(48) as pool:
        assert set(pool.map(create_one, jobs)) == {201}
    rows = db.execute(
        "SELECT user_id, count(*), count(DISTINCT title) FROM tasks WHERE user_id = ANY(%s) GROUP BY user_id",
        ([u.id for u in users],),
    ).fetchall()
    assert sorted(rows) == sorted((u.id, 15, 15) for u in users)
