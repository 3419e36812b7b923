"""The six task endpoints end to end, over real HTTP against the real app and PostgreSQL."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import User
from factories import task_body, update_body

TASK_KEYS = {
    *("id", "user_id", "title", "description", "completed", "created_at", "updated_at", "version"),
    *("priority", "tags", "due_at", "recurrence", "completed_at"),
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def create(client: httpx.Client, user: User, **body: Any) -> dict[str, Any]:
    response = client.post("/api/tasks", json=task_body(**body), headers=user.headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


def count_tasks(db: psycopg.Connection[Any], user: User) -> int:
    row = db.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user.id,)).fetchone()
    assert row is not None
    return int(row[0])


# --- create -------------------------------------------------------------------------------------


def test_create_returns_201_location_and_exactly_the_task_keys(client: httpx.Client, user: User) -> None:
    response = client.post("/api/tasks", json={"title": "Buy milk", "description": "2 litres"}, headers=user.headers)
    assert response.status_code == 201
    task = response.json()["data"]
    assert set(task) == TASK_KEYS
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert task["user_id"] == user.id
    assert task["title"] == "Buy milk"
    assert task["description"] == "2 litres"
    assert task["completed"] is False
    assert isinstance(task["id"], int) and task["id"] > 0
    assert RFC3339_UTC.match(task["created_at"]) and RFC3339_UTC.match(task["updated_at"])
    assert task["created_at"] == task["updated_at"]
    assert client.get(response.headers["location"], headers=user.headers).json()["data"] == task


def test_create_defaults_completed_false_and_description_null(client: httpx.Client, user: User) -> None:
    response = client.post("/api/tasks", json={"title": "x"}, headers=user.headers)
    assert response.status_code == 201
    assert response.json()["data"]["completed"] is False
    assert response.json()["data"]["description"] is None


def test_create_accepts_completed_true(client: httpx.Client, user: User) -> None:
    assert create(client, user, completed=True)["completed"] is True


def test_create_trims_title(client: httpx.Client, user: User) -> None:
    assert create(client, user, title="  \t Buy milk \n ")["title"] == "Buy milk"


def test_server_owned_and_unknown_fields_never_take_effect(client: httpx.Client, user: User, other_user: User) -> None:
    body = {
        "title": "mine",
        "id": 999_999_999,
        "user_id": other_user.id,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "owner": "someone",
        "is_admin": True,
    }
    task = client.post("/api/tasks", json=body, headers=user.headers).json()["data"]
    assert task["id"] != 999_999_999
    assert task["user_id"] == user.id
    assert not task["created_at"].startswith("2000")
    assert set(task) == TASK_KEYS
    assert client.get("/api/tasks", headers=other_user.headers).json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    "title",
    [
        "a",
        "x" * 500,
        "é" * 500,  # 2 bytes each in UTF-8: characters count, not bytes
        "😀" * 500,  # 4 bytes each, outside the BMP
        "  " + "y" * 500 + "  ",  # 500 once trimmed
    ],
)
def test_title_limits_count_characters_after_trimming(client: httpx.Client, user: User, title: str) -> None:
    task = create(client, user, title=title)
    assert task["title"] == title.strip()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "\t\n"}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "é" * 501}, "title"),
        ({"title": None}, "title"),
        ({"title": 7}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "ok", "description": "d" * 10_001}, "description"),
        ({"title": "ok", "description": 5}, "description"),
        ({"title": "ok", "completed": "true"}, "completed"),
        ({"title": "ok", "completed": 1}, "completed"),
        ({"title": "ok", "completed": None}, "completed"),
    ],
)
def test_create_rejects_invalid_fields_with_422_and_stores_nothing(
    client: httpx.Client, user: User, db: psycopg.Connection[Any], body: dict[str, Any], field: str
) -> None:
    error = assert_error(client.post("/api/tasks", json=body, headers=user.headers), 422)
    assert [d["field"] for d in error["details"]] == [field]
    assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])
    assert count_tasks(db, user) == 0


def test_description_of_exactly_10000_characters_is_accepted(client: httpx.Client, user: User) -> None:
    assert create(client, user, description="é" * 10_000)["description"] == "é" * 10_000


def test_malformed_json_is_400(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    response = client.post(
        "/api/tasks", content=b'{"title": ', headers={**user.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400)
    assert count_tasks(db, user) == 0


# --- get ----------------------------------------------------------------------------------------


def test_get_returns_the_task(client: httpx.Client, user: User) -> None:
    task = create(client, user)
    response = client.get(f"/api/tasks/{task['id']}", headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {"data": task}


@pytest.mark.parametrize("task_id", ["0", "-1", "9223372036854775807", "9223372036854775808", "1" * 40, "abc", "1.5"])
def test_ids_that_cannot_exist_are_404(client: httpx.Client, user: User, task_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"/api/tasks/{task_id}", json={"title": "x"}, headers=user.headers)
        assert_error(response, 404)
    assert_error(client.patch(f"/api/tasks/{task_id}/complete", headers=user.headers), 404)


# --- put ----------------------------------------------------------------------------------------


def test_put_with_only_title_keeps_description_and_completed(client: httpx.Client, user: User) -> None:
    task = create(client, user, title="old", description="keep me", completed=True)
    response = client.put(f"/api/tasks/{task['id']}", json={"title": "  new  "}, headers=user.headers)
    assert response.status_code == 200
    updated = response.json()["data"]
    assert updated["title"] == "new"
    assert updated["description"] == "keep me"
    assert updated["completed"] is True
    assert updated["created_at"] == task["created_at"]
    assert updated["updated_at"] > task["updated_at"]


def test_put_null_description_clears_it_and_sets_completed(client: httpx.Client, user: User) -> None:
    task = create(client, user, description="something", completed=False)
    body = {"title": task["title"], "description": None, "completed": True}
    updated = client.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers).json()["data"]
    assert updated["description"] is None
    assert updated["completed"] is True


def test_put_replaces_all_given_fields(client: httpx.Client, user: User) -> None:
    task = create(client, user)
    body = update_body()
    updated = client.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers).json()["data"]
    assert (updated["title"], updated["description"], updated["completed"]) == (
        body["title"].strip(),
        body["description"],
        body["completed"],
    )
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == updated


def test_updated_at_moves_forward_on_every_change_created_at_never(client: httpx.Client, user: User) -> None:
    task = create(client, user)
    stamps = [task["updated_at"]]
    for i in range(5):
        body = {"title": f"title {i}"}
        updated = client.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers).json()["data"]
        assert updated["created_at"] == task["created_at"]
        stamps.append(updated["updated_at"])
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_put_that_changes_nothing_keeps_updated_at(client: httpx.Client, user: User) -> None:
    task = create(client, user, description="d")
    body = {"title": task["title"], "description": "d", "completed": task["completed"]}
    updated = client.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers).json()["data"]
    assert updated == task


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "no title"}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "ok", "completed": "false"}, "completed"),
        ({"title": "ok", "description": "d" * 10_001}, "description"),
    ],
)
def test_put_rejects_invalid_bodies_and_changes_nothing(
    client: httpx.Client, user: User, body: dict[str, Any], field: str
) -> None:
    task = create(client, user)
    error = assert_error(client.put(f"/api/tasks/{task['id']}", json=body, headers=user.headers), 422)
    assert error["details"][0]["field"] == field
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task


def test_put_missing_task_is_404(client: httpx.Client, user: User) -> None:
    assert_error(client.put("/api/tasks/987654321", json={"title": "x"}, headers=user.headers), 404)


# --- patch .../complete ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b""},
        {"json": {}},
        {"json": None, "content": b"null"},
        {"json": {"unknown": 1}},
    ],
    ids=["no-body", "empty-body", "empty-object", "null", "unknown-key"],
)
def test_patch_complete_without_completed_toggles(client: httpx.Client, user: User, kwargs: dict[str, Any]) -> None:
    task = create(client, user, completed=False)
    url = f"/api/tasks/{task['id']}/complete"
    headers = {**user.headers, "Content-Type": "application/json"} if "content" in kwargs else user.headers
    first = client.patch(url, headers=headers, **kwargs)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["completed"] is True
    assert first.json()["data"]["updated_at"] > task["updated_at"]
    second = client.patch(url, headers=headers, **kwargs)
    assert second.json()["data"]["completed"] is False


@pytest.mark.parametrize("value", [True, False])
def test_patch_complete_sets_explicit_value_idempotently(client: httpx.Client, user: User, value: bool) -> None:
    task = create(client, user, completed=not value)
    url = f"/api/tasks/{task['id']}/complete"
    first = client.patch(url, json={"completed": value}, headers=user.headers).json()["data"]
    assert first["completed"] is value
    assert first["updated_at"] > task["updated_at"]
    again = client.patch(url, json={"completed": value}, headers=user.headers).json()["data"]
    assert again == first  # a retry changes nothing, not even updated_at


@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}, "yes"])
def test_patch_complete_rejects_non_boolean(client: httpx.Client, user: User, value: Any) -> None:
    task = create(client, user)
    response = client.patch(f"/api/tasks/{task['id']}/complete", json={"completed": value}, headers=user.headers)
    error = assert_error(response, 422)
    assert error["details"][0]["field"] == "completed"
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task


def test_patch_complete_missing_task_is_404(client: httpx.Client, user: User) -> None:
    assert_error(client.patch("/api/tasks/987654321/complete", headers=user.headers), 404)


# --- delete -------------------------------------------------------------------------------------


def test_delete_is_204_empty_then_404(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    task = create(client, user)
    response = client.delete(f"/api/tasks/{task['id']}", headers=user.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert count_tasks(db, user) == 0
    assert_error(client.delete(f"/api/tasks/{task['id']}", headers=user.headers), 404)
    assert_error(client.get(f"/api/tasks/{task['id']}", headers=user.headers), 404)


# --- isolation ----------------------------------------------------------------------------------


def test_another_users_task_is_exactly_like_a_missing_one(
    client: httpx.Client, user: User, other_user: User, db: psycopg.Connection[Any]
) -> None:
    task = create(client, user, title="private", completed=False)
    missing_id = 987_654_321
    calls = [
        ("GET", "/api/tasks/{id}", None),
        ("PUT", "/api/tasks/{id}", {"title": "stolen", "completed": True}),
        ("PATCH", "/api/tasks/{id}/complete", None),
        ("PATCH", "/api/tasks/{id}/complete", {"completed": True}),
        ("DELETE", "/api/tasks/{id}", None),
    ]
    for method, path, body in calls:
        theirs = client.request(method, path.format(id=task["id"]), json=body, headers=other_user.headers)
        nothing = client.request(method, path.format(id=missing_id), json=body, headers=other_user.headers)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json() == nothing.json()
        assert theirs.headers["content-length"] == nothing.headers["content-length"]
    listed = client.get("/api/tasks", headers=other_user.headers).json()
    assert listed["data"] == [] and listed["meta"]["total"] == 0
    # Nothing changed for the owner.
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task
    assert count_tasks(db, user) == 1


def test_user_row_is_created_on_first_write_with_profile_claims(
    client: httpx.Client, user: User, db: psycopg.Connection[Any]
) -> None:
    assert db.execute("SELECT 1 FROM users WHERE id = %s", (user.id,)).fetchone() is None
    client.get("/api/tasks", headers=user.headers)  # reads create nothing
    assert db.execute("SELECT 1 FROM users WHERE id = %s", (user.id,)).fetchone() is None
    create(client, user)
    create(client, user)
    row = db.execute("SELECT email, name FROM users WHERE id = %s", (user.id,)).fetchone()
    assert row == (f"{user.id}@example.com", "Test User")


# --- list ---------------------------------------------------------------------------------------


@pytest.fixture
def listed_user(client: httpx.Client, user: User) -> tuple[User, list[dict[str, Any]]]:
    specs = [
        ("Buy milk", "semi-skimmed", False),
        ("walk the DOG", None, True),
        ("50% off sale", "shoes", False),
        ("file_name cleanup", "rename a_b files", True),
        ("Call mum", "about the MILKMAN", False),
    ]
    tasks = []
    for title, description, completed in specs:
        tasks.append(create(client, user, title=title, description=description, completed=completed))
        time.sleep(0.002)
    return user, tasks


def titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [t["title"] for t in response.json()["data"]]


def test_list_is_newest_first_with_meta(client: httpx.Client, listed_user: tuple[User, list[dict[str, Any]]]) -> None:
    user, tasks = listed_user
    response = client.get("/api/tasks", headers=user.headers)
    body = response.json()
    assert set(body) == {"data", "meta"}
    assert [t["id"] for t in body["data"]] == [t["id"] for t in reversed(tasks)]
    assert body["meta"] == {"total": 5, "limit": 1000, "offset": 0, "next_cursor": None}
    assert all(set(t) == TASK_KEYS for t in body["data"])


def test_list_ties_are_broken_by_id(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    ids = [create(client, user, title=f"t{i}")["id"] for i in range(4)]
    db.execute("UPDATE tasks SET created_at = '2026-01-01T00:00:00Z' WHERE user_id = %s", (user.id,))
    newest = [t["id"] for t in client.get("/api/tasks", headers=user.headers).json()["data"]]
    assert newest == sorted(ids, reverse=True)
    oldest = client.get("/api/tasks?sort=created_at", headers=user.headers).json()["data"]
    assert [t["id"] for t in oldest] == sorted(ids)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("completed=true", {"walk the DOG", "file_name cleanup"}),
        ("completed=false", {"Buy milk", "50% off sale", "Call mum"}),
        ("status=completed", {"walk the DOG", "file_name cleanup"}),
        ("status=pending", {"Buy milk", "50% off sale", "Call mum"}),
        ("status=all", {"Buy milk", "walk the DOG", "50% off sale", "file_name cleanup", "Call mum"}),
        ("completed=true&status=completed", {"walk the DOG", "file_name cleanup"}),
        ("completed=true&status=pending", set()),
        ("completed=false&status=all", {"Buy milk", "50% off sale", "Call mum"}),
        ("q=MILK", {"Buy milk", "Call mum"}),  # title or description, any case
        ("q=dog", {"walk the DOG"}),
        ("q=%25", {"50% off sale"}),  # % is a literal character
        ("q=_", {"file_name cleanup"}),  # _ is a literal character
        ("q=a_b", {"file_name cleanup"}),
        ("q=50%25 off", {"50% off sale"}),
        ("q=", {"Buy milk", "walk the DOG", "50% off sale", "file_name cleanup", "Call mum"}),
        ("q=nothing-matches", set()),
        ("q=milk&completed=false", {"Buy milk", "Call mum"}),
        ("q=milk&status=completed", set()),
    ],
)
def test_list_filters(
    client: httpx.Client, listed_user: tuple[User, list[dict[str, Any]]], query: str, expected: set[str]
) -> None:
    user, _ = listed_user
    response = client.get(f"/api/tasks?{query}", headers=user.headers)
    assert set(titles(response)) == expected
    assert response.json()["meta"]["total"] == len(expected)


def test_list_sorts(client: httpx.Client, listed_user: tuple[User, list[dict[str, Any]]]) -> None:
    user, tasks = listed_user
    by_title = sorted(t["title"] for t in tasks)
    assert titles(client.get("/api/tasks?sort=title", headers=user.headers)) == by_title
    assert titles(client.get("/api/tasks?sort=-title", headers=user.headers)) == by_title[::-1]
    in_order = [t["title"] for t in tasks]
    assert titles(client.get("/api/tasks?sort=created_at", headers=user.headers)) == in_order
    assert titles(client.get("/api/tasks?sort=-created_at", headers=user.headers)) == in_order[::-1]
    # Touch the oldest: it becomes the most recently updated.
    client.put(f"/api/tasks/{tasks[0]['id']}", json={"title": "Buy milk!"}, headers=user.headers)
    by_update = titles(client.get("/api/tasks?sort=-updated_at", headers=user.headers))
    assert by_update[0] == "Buy milk!"
    assert titles(client.get("/api/tasks?sort=updated_at", headers=user.headers))[-1] == "Buy milk!"


def test_list_limit_and_offset_page_through_stably(
    client: httpx.Client, listed_user: tuple[User, list[dict[str, Any]]]
) -> None:
    user, _ = listed_user
    everything = titles(client.get("/api/tasks", headers=user.headers))
    pages = []
    for offset in range(0, 6, 2):
        response = client.get(f"/api/tasks?limit=2&offset={offset}", headers=user.headers)
        meta = response.json()["meta"]
        assert {k: v for k, v in meta.items() if k != "next_cursor"} == {"total": 5, "limit": 2, "offset": offset}
        assert (meta["next_cursor"] is None) == (offset == 4)
        pages.extend(titles(response))
    assert pages == everything
    past_end = client.get("/api/tasks?limit=2&offset=50", headers=user.headers)
    assert past_end.json() == {"data": [], "meta": {"total": 5, "limit": 2, "offset": 50, "next_cursor": None}}


# --- keyset paging (after / meta.next_cursor) ----------------------------------------------------


SORTS = ["-created_at", "created_at", "-updated_at", "updated_at", "title", "-title"]


@pytest.fixture
def tied_user(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> tuple[User, list[int]]:
    """Seven tasks whose sort keys tie in pairs (same created_at, updated_at and title), so that only
    the id orders them: a cursor that kept the key but not the id would repeat or skip one."""
    ids = [create(client, user, title=f"title {i // 2}", completed=i % 3 == 0)["id"] for i in range(7)]
    db.execute(
        "UPDATE tasks SET created_at = '2026-01-01T00:00:00Z'::timestamptz + (id / 2 * 2 - %s) * interval '1 ms', "
        "updated_at = '2026-02-01T00:00:00Z'::timestamptz - (id / 2 * 2 - %s) * interval '1 ms' WHERE user_id = %s",
        (ids[0], ids[0], user.id),
    )
    return user, ids


def follow(client: httpx.Client, user: User, query: str, *, limit: int) -> list[list[int]]:
    """The ids of every page of a list, following meta.next_cursor until it is null."""
    pages: list[list[int]] = []
    url = f"/api/tasks?{query}&limit={limit}"
    while True:
        response = client.get(url, headers=user.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([t["id"] for t in body["data"]])
        assert len(pages) <= 20, "the cursor does not advance"
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return pages
        assert body["meta"]["offset"] == 0
        url = f"/api/tasks?{query}&limit={limit}&after={cursor}"


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_following_next_cursor_yields_the_whole_list_once_in_order(
    client: httpx.Client, tied_user: tuple[User, list[int]], sort: str, limit: int
) -> None:
    user, _ = tied_user
    everything = [t["id"] for t in client.get(f"/api/tasks?sort={sort}", headers=user.headers).json()["data"]]
    pages = follow(client, user, f"sort={sort}", limit=limit)
    assert [task_id for page in pages for task_id in page] == everything
    assert all(len(page) == limit for page in pages[:-1])
    assert pages[-1]  # a list whose size is a multiple of limit ends on a full page, not an empty one


@pytest.mark.parametrize(
    "query",
    ["completed=false", "completed=true", "status=pending&sort=title", "q=title", "q=title&sort=-updated_at"],
)
def test_keyset_paging_keeps_the_filters(client: httpx.Client, tied_user: tuple[User, list[int]], query: str) -> None:
    user, _ = tied_user
    everything = client.get(f"/api/tasks?{query}", headers=user.headers).json()
    pages = follow(client, user, query, limit=2)
    assert [task_id for page in pages for task_id in page] == [t["id"] for t in everything["data"]]
    first = client.get(f"/api/tasks?{query}&limit=2", headers=user.headers).json()
    assert first["meta"]["total"] == everything["meta"]["total"]  # the total is the whole filtered list's


def test_tasks_created_and_deleted_between_pages_neither_repeat_nor_skip_the_others(
    client: httpx.Client, user: User
) -> None:
    ids = [create(client, user, title=f"t{i}")["id"] for i in range(6)]
    first = client.get("/api/tasks?limit=2", headers=user.headers).json()
    assert [t["id"] for t in first["data"]] == ids[:-3:-1]
    create(client, user, title="newer than the cursor")  # before the cursor: not on later pages
    assert client.delete(f"/api/tasks/{ids[2]}", headers=user.headers).status_code == 204
    rest = follow(client, user, f"after={first['meta']['next_cursor']}", limit=2)
    assert [task_id for page in rest for task_id in page] == [ids[3], ids[1], ids[0]]


def test_a_page_after_the_last_task_is_empty_with_the_total(client: httpx.Client, user: User) -> None:
    ids = [create(client, user, title=f"t{i}")["id"] for i in range(3)]
    first = client.get("/api/tasks?limit=2", headers=user.headers).json()
    cursor = first["meta"]["next_cursor"]
    assert client.delete(f"/api/tasks/{ids[0]}", headers=user.headers).status_code == 204
    after = client.get(f"/api/tasks?limit=2&after={cursor}", headers=user.headers).json()
    assert after == {"data": [], "meta": {"total": 2, "limit": 2, "offset": 0, "next_cursor": None}}


def _cursor(*parts: Any) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(parts).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "after",
    [
        "",
        "not-a-cursor",
        "%00",
        _cursor("-created_at", "2026-01-01", 1),  # a time sort with a text key
        _cursor("title", 5, 1),  # a text sort with a time key
        _cursor("-created_at", 0, 0),  # ids start at 1
        _cursor("-created_at", 0, 2**63),
        _cursor("-created_at", 10**30, 1),  # beyond any timestamp
        _cursor("title", "a\u0000b", 1),
        _cursor("nonsense", 0, 1),
        _cursor("-created_at", 0),
        "x" * 2049,
    ],
)
def test_an_after_that_is_not_one_of_our_cursors_is_422_and_names_after(
    client: httpx.Client, user: User, after: str
) -> None:
    create(client, user)
    response = client.get("/api/tasks", params={"after": after}, headers=user.headers)
    assert_error(response, 422)
    assert response.json()["error"]["details"][0]["field"] == "after"


def test_a_cursor_of_another_sort_is_422(client: httpx.Client, user: User) -> None:
    for i in range(3):
        create(client, user, title=f"t{i}")
    cursor = client.get("/api/tasks?limit=1", headers=user.headers).json()["meta"]["next_cursor"]
    response = client.get(f"/api/tasks?limit=1&sort=title&after={cursor}", headers=user.headers)
    assert_error(response, 422)
    assert "sorted by" in response.json()["error"]["details"][0]["message"]


@pytest.mark.parametrize("offset", ["0", "1"])
def test_after_and_offset_together_are_422(client: httpx.Client, user: User, offset: str) -> None:
    for i in range(3):
        create(client, user, title=f"t{i}")
    cursor = client.get("/api/tasks?limit=1", headers=user.headers).json()["meta"]["next_cursor"]
    response = client.get(f"/api/tasks?limit=1&offset={offset}&after={cursor}", headers=user.headers)
    assert_error(response, 422)
    assert response.json()["error"]["details"][0]["field"] == "after"


def test_another_users_cursor_shows_only_my_tasks(client: httpx.Client, user: User, other_user: User) -> None:
    for i in range(3):
        create(client, other_user, title=f"theirs {i}")
    mine = create(client, user, title="mine")
    cursor = client.get("/api/tasks?limit=1", headers=other_user.headers).json()["meta"]["next_cursor"]
    page = client.get(f"/api/tasks?after={cursor}", headers=user.headers).json()
    assert [t["id"] for t in page["data"]] in ([], [mine["id"]])
    assert page["meta"]["total"] == 1


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "offset=-1",
        "offset=abc",
        "offset=99999999999999999999999",
        "sort=importance",
        "sort=created_at;DROP TABLE tasks",
        "status=done",
        "completed=yes",
        "completed=1",
        "completed=TRUE",
    ],
)
def test_list_parameters_out_of_range_are_422(client: httpx.Client, user: User, query: str) -> None:
    assert_error(client.get(f"/api/tasks?{query}", headers=user.headers), 422)


def test_list_limit_bounds_are_accepted(client: httpx.Client, user: User) -> None:
    for query in ("limit=1", "limit=1000", "offset=0"):
        assert client.get(f"/api/tasks?{query}", headers=user.headers).status_code == 200
