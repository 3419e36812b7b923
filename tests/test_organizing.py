"""Organizing tasks over real HTTP and PostgreSQL: priority, tags, due dates, recurrence,
completed_at, GET /api/tags, clearing completed tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import LiveServer, User
from factories import recurring_body, task_body, update_body

from app.config import Settings


def create(client: httpx.Client, user: User, **body: Any) -> dict[str, Any]:
    response = client.post("/api/tasks", json=task_body(**body), headers=user.headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


def put(client: httpx.Client, user: User, task_id: int, **body: Any) -> httpx.Response:
    return client.put(f"/api/tasks/{task_id}", json=body, headers=user.headers)


def complete(client: httpx.Client, user: User, task_id: int, body: Any = None, **headers: str) -> httpx.Response:
    return client.patch(f"/api/tasks/{task_id}/complete", json=body, headers={**user.headers, **headers})


def tasks_of(client: httpx.Client, user: User) -> list[dict[str, Any]]:
    response = client.get("/api/tasks", params={"sort": "created_at"}, headers=user.headers)
    assert response.status_code == 200
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def field_of(response: httpx.Response) -> str:
    error = assert_error(response, 422, "VALIDATION_ERROR")
    field: str = error["details"][0]["field"]
    return field.split("[", 1)[0]  # a list's element is named precisely: tags[3]


# --- fields: defaults, validation, PUT ----------------------------------------------------------


def test_defaults_on_a_task_created_with_the_original_keys(client: httpx.Client, user: User) -> None:
    task = client.post("/api/tasks", json={"title": "plain"}, headers=user.headers).json()["data"]
    assert task["priority"] == "none"
    assert task["tags"] == []
    assert task["due_at"] is None
    assert task["recurrence"] is None
    assert task["completed_at"] is None


def test_fields_are_stored_and_returned_due_at_in_utc(client: httpx.Client, user: User) -> None:
    body = {
        "title": "t",
        "priority": "high",
        "tags": ["  Home ", "errands"],
        "due_at": "2026-12-01T10:30:00+02:00",
        "recurrence": "FREQ=WEEKLY;BYDAY=MO,TU",
    }
    task = client.post("/api/tasks", json=body, headers=user.headers).json()["data"]
    assert task["priority"] == "high"
    assert task["tags"] == ["Home", "errands"]
    assert task["due_at"] == "2026-12-01T08:30:00Z"
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO,TU"
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task


def test_null_on_post_means_the_default(client: httpx.Client, user: User) -> None:
    body = {"title": "t", "priority": None, "tags": None, "due_at": None, "recurrence": None}
    task = client.post("/api/tasks", json=body, headers=user.headers).json()["data"]
    assert (task["priority"], task["tags"], task["due_at"], task["recurrence"]) == ("none", [], None, None)


def test_tags_trimmed_case_duplicates_collapse_to_the_first_in_order(client: httpx.Client, user: User) -> None:
    task = create(client, user, tags=["b", "Work", " work ", "a", "WORK", "B"])
    assert task["tags"] == ["b", "Work", "a"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", "urgent"),
        ("priority", "HIGH"),
        ("priority", 3),
        ("tags", "home"),
        ("tags", [""]),
        ("tags", ["   "]),
        ("tags", ["x" * 51]),
        ("tags", ["a\nb"]),
        ("tags", ["a\x7fb"]),
        ("tags", ["a\u0085b"]),
        ("tags", [1]),
        ("tags", [f"t{i}" for i in range(21)]),
        ("due_at", "2026-12-01T10:30:00"),  # no offset
        ("due_at", "2026-12-01"),
        ("due_at", "tomorrow"),
        ("due_at", "2026-02-30T10:00:00Z"),
        ("due_at", 1764000000),
        ("recurrence", "FREQ=HOURLY"),
        ("recurrence", "FREQ=DAILY;BYHOUR=9"),
        ("recurrence", "FREQ=MONTHLY;BYDAY=MO"),
        ("recurrence", "FREQ=DAILY;BYDAY=MO"),
        ("recurrence", "FREQ=WEEKLY;BYDAY=1MO"),
        ("recurrence", "FREQ=WEEKLY;BYDAY=MO,MO"),
        ("recurrence", "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z"),
        ("recurrence", "FREQ=DAILY;FREQ=WEEKLY"),
        ("recurrence", "INTERVAL=2"),
        ("recurrence", "FREQ=DAILY;INTERVAL=0"),
        ("recurrence", "FREQ=DAILY;COUNT=0"),
        ("recurrence", "FREQ=DAILY;UNTIL=20270101"),
        ("recurrence", "FREQ=DAILY;UNTIL=20271332T000000Z"),
        ("recurrence", "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY"),
        ("recurrence", "RRULE:FREQ=DAILY"),
        ("recurrence", "freq=daily"),
        ("recurrence", "FREQ=DAILY;"),
        ("recurrence", ""),
        ("recurrence", "FREQ=DAILY;WKST=MO"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_change_nothing(
    client: httpx.Client, user: User, field: str, value: Any
) -> None:
    body = {"title": "t", "due_at": "2026-12-01T10:00:00Z", field: value}
    assert field_of(client.post("/api/tasks", json=body, headers=user.headers)) == field
    task = create(client, user, title="kept", due_at=None, recurrence=None)
    assert field_of(put(client, user, task["id"], **body)) == field
    assert client.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task
    assert len(tasks_of(client, user)) == 1


def test_recurrence_needs_a_due_at(client: httpx.Client, user: User) -> None:
    response = client.post("/api/tasks", json={"title": "t", "recurrence": "FREQ=DAILY"}, headers=user.headers)
    assert field_of(response) == "recurrence"
    task = create(client, user, due_at=None, recurrence=None)
    assert field_of(put(client, user, task["id"], title="t", recurrence="FREQ=DAILY")) == "recurrence"
    recurring = client.post("/api/tasks", json=recurring_body(), headers=user.headers).json()["data"]
    # Clearing the due date of a recurring task, or keeping none: 422, nothing changed.
    assert field_of(put(client, user, recurring["id"], title="t", due_at=None)) == "recurrence"
    assert client.get(f"/api/tasks/{recurring['id']}", headers=user.headers).json()["data"] == recurring
    # Both cleared together is fine.
    cleared = put(client, user, recurring["id"], title="t", due_at=None, recurrence=None).json()["data"]
    assert (cleared["due_at"], cleared["recurrence"]) == (None, None)


def test_put_with_the_original_keys_keeps_every_new_field(client: httpx.Client, user: User) -> None:
    """The seed's frontend sends {title, description}: nothing of the new fields is cleared."""
    task = client.post("/api/tasks", json=recurring_body(priority="medium", tags=["x", "Y"]), headers=user.headers)
    before = task.json()["data"]
    after = put(client, user, before["id"], title="renamed", description="d").json()["data"]
    for key in ("priority", "tags", "due_at", "recurrence", "completed_at", "completed"):
        assert after[key] == before[key], key
    assert after["title"] == "renamed"
    assert after["version"] == before["version"] + 1


def test_put_null_clears_and_empty_tags_clear(client: httpx.Client, user: User) -> None:
    task = client.post("/api/tasks", json=recurring_body(priority="low", tags=["a"]), headers=user.headers)
    task_id = task.json()["data"]["id"]
    cleared = put(client, user, task_id, title="t", priority=None, tags=[], due_at=None, recurrence=None).json()
    assert (cleared["data"]["priority"], cleared["data"]["tags"]) == ("none", [])
    assert (cleared["data"]["due_at"], cleared["data"]["recurrence"]) == (None, None)
    again = put(client, user, task_id, title="t", tags=["b"], priority="high").json()["data"]
    assert (again["tags"], again["priority"]) == (["b"], "high")
    assert put(client, user, task_id, title="t", tags=None).json()["data"]["tags"] == []


@pytest.mark.parametrize(
    "change",
    [
        {"priority": "high"},
        {"tags": ["new"]},
        {"tags": ["Old"]},  # a change of case is a change
        {"due_at": "2030-01-01T00:00:00Z"},
        {"due_at": None, "recurrence": None},
        {"recurrence": "FREQ=YEARLY"},
    ],
)
def test_each_new_field_bumps_version_updated_at_and_the_feed(
    client: httpx.Client, user: User, change: dict[str, Any]
) -> None:
    body = {"title": "t", "priority": "low", "tags": ["old"], "due_at": "2029-01-01T00:00:00Z"}
    body["recurrence"] = "FREQ=DAILY"
    task = client.post("/api/tasks", json=body, headers=user.headers).json()["data"]
    cursor = client.get("/api/tasks/changes", headers=user.headers).json()["meta"]["cursor"]
    # The same values: nothing changes, not even the version.
    same = put(client, user, task["id"], **body)
    assert same.json()["data"] == task
    changed = put(client, user, task["id"], **{**body, **change}).json()["data"]
    assert changed["version"] == task["version"] + 1
    assert changed["updated_at"] > task["updated_at"]
    feed = client.get("/api/tasks/changes", params={"since": cursor}, headers=user.headers).json()
    assert feed["data"] == [{"op": "upsert", "task": changed}]


def test_completed_at_follows_completed(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    task = create(client, user, completed=False, recurrence=None)
    assert task["completed_at"] is None
    done = complete(client, user, task["id"]).json()["data"]
    assert done["completed"] is True and done["completed_at"] is not None
    assert done["completed_at"] >= task["created_at"]
    # Setting it again changes nothing; the time it was completed stays.
    assert complete(client, user, task["id"], {"completed": True}).json()["data"] == done
    undone = complete(client, user, task["id"]).json()["data"]
    assert undone["completed_at"] is None
    via_put = put(client, user, task["id"], title="t", completed=True).json()["data"]
    assert via_put["completed_at"] is not None
    assert put(client, user, task["id"], title="t", completed=False).json()["data"]["completed_at"] is None
    created_done = create(client, user, completed=True, recurrence=None)
    assert created_done["completed_at"] is not None
    # completed_at is server-owned.
    forged = {"title": "t", "completed_at": "2000-01-01T00:00:00Z"}
    assert client.post("/api/tasks", json=forged, headers=user.headers).json()["data"]["completed_at"] is None


def test_completion_answers_data_and_meta_next(client: httpx.Client, user: User) -> None:
    task = create(client, user, completed=False, recurrence=None)
    response = complete(client, user, task["id"])
    assert response.status_code == 200
    assert set(response.json()) == {"data", "meta"}
    assert response.json()["meta"] == {"next": None}
    assert response.headers["etag"] == f'"{response.json()["data"]["version"]}"'


# --- recurrence ---------------------------------------------------------------------------------


def recurring(client: httpx.Client, user: User, due_at: str, rule: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/api/tasks",
        json=recurring_body(due_at=due_at, recurrence=rule, completed=False, **body),
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


def next_of(client: httpx.Client, user: User, task: dict[str, Any], how: Any = None) -> dict[str, Any] | None:
    response = complete(client, user, task["id"], how)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["completed"] is True
    following: dict[str, Any] | None = response.json()["meta"]["next"]
    return following


def series(client: httpx.Client, user: User, due_at: str, rule: str, steps: int) -> list[str | None]:
    """The due dates of the occurrences completing each one creates, `steps` times (None: exhausted)."""
    task: dict[str, Any] | None = recurring(client, user, due_at, rule)
    out: list[str | None] = []
    for _ in range(steps):
        assert task is not None
        task = next_of(client, user, task)
        out.append(None if task is None else task["due_at"])
        if task is None:
            break
    return out


def test_completing_a_recurring_task_creates_the_next_occurrence(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-15T09:30:00Z", "FREQ=DAILY", priority="high", tags=["Gym", "health"])
    following = next_of(client, user, task)
    assert following is not None
    assert following["due_at"] == "2026-06-16T09:30:00Z"
    for key in ("title", "description", "priority", "tags", "recurrence"):
        assert following[key] == task[key], key
    assert following["completed"] is False and following["completed_at"] is None
    assert following["version"] == 1 and following["id"] != task["id"]
    assert client.get(f"/api/tasks/{following['id']}", headers=user.headers).json()["data"] == following
    assert len(tasks_of(client, user)) == 2


def test_set_true_creates_it_too_and_set_false_never(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-15T09:30:00Z", "FREQ=WEEKLY")
    assert complete(client, user, task["id"], {"completed": False}).json()["meta"]["next"] is None
    following = next_of(client, user, task, {"completed": True})
    assert following is not None and following["due_at"] == "2026-06-22T09:30:00Z"


def test_month_ends_are_skipped_as_rfc_5545_does(client: httpx.Client, user: User) -> None:
    """A monthly rule on the 31st: the months without a 31st are skipped (RFC 5545, dateutil)."""
    dates = series(client, user, "2026-01-31T08:00:00Z", "FREQ=MONTHLY", 4)
    assert dates == ["2026-03-31T08:00:00Z", "2026-05-31T08:00:00Z", "2026-07-31T08:00:00Z", "2026-08-31T08:00:00Z"]
    assert series(client, user, "2026-01-30T08:00:00Z", "FREQ=MONTHLY", 2) == [
        "2026-03-30T08:00:00Z",
        "2026-04-30T08:00:00Z",
    ]


def test_leap_days(client: httpx.Client, user: User) -> None:
    assert series(client, user, "2028-02-28T12:00:00Z", "FREQ=DAILY", 2) == [
        "2028-02-29T12:00:00Z",
        "2028-03-01T12:00:00Z",
    ]
    # Yearly from 29 February: the next 29 February (RFC 5545 skips the years without one).
    assert series(client, user, "2028-02-29T12:00:00Z", "FREQ=YEARLY", 1) == ["2032-02-29T12:00:00Z"]


def test_steps_are_in_utc_across_a_dst_change(client: httpx.Client, user: User) -> None:
    """9:00 in New York (-05:00) the day before DST starts: the next day is 24 hours later in UTC,
    14:00Z, which is 10:00 there (-04:00). Steps are taken in UTC, as due_at is stored."""
    assert series(client, user, "2026-03-07T09:00:00-05:00", "FREQ=DAILY", 2) == [
        "2026-03-08T14:00:00Z",
        "2026-03-09T14:00:00Z",
    ]
    # And back in autumn (Europe/Paris, +02:00 -> +01:00 on 25 October 2026).
    assert series(client, user, "2026-10-24T09:00:00+02:00", "FREQ=DAILY", 1) == ["2026-10-25T07:00:00Z"]


def test_weekly_by_day_and_interval(client: httpx.Client, user: User) -> None:
    # 2026-11-30 is a Monday.
    assert series(client, user, "2026-11-30T07:00:00Z", "FREQ=WEEKLY;BYDAY=MO,TH", 3) == [
        "2026-12-03T07:00:00Z",
        "2026-12-07T07:00:00Z",
        "2026-12-10T07:00:00Z",
    ]
    assert series(client, user, "2026-11-30T07:00:00Z", "FREQ=DAILY;INTERVAL=10", 1) == ["2026-12-10T07:00:00Z"]


def test_count_counts_the_whole_series(client: httpx.Client, user: User) -> None:
    assert series(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY;COUNT=3", 5) == [
        "2026-06-02T09:00:00Z",
        "2026-06-03T09:00:00Z",
        None,
    ]
    assert series(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY;COUNT=1", 1) == [None]


def test_until_is_inclusive_and_ends_the_series(client: httpx.Client, user: User) -> None:
    assert series(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY;UNTIL=20260603T090000Z", 5) == [
        "2026-06-02T09:00:00Z",
        "2026-06-03T09:00:00Z",
        None,
    ]


def test_a_new_rule_starts_a_new_series(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY;COUNT=2")
    second = next_of(client, user, task)
    assert second is not None
    # Rescheduling keeps its place in the series: the COUNT is reached.
    moved = put(client, user, second["id"], title="t", due_at="2026-07-01T09:00:00Z").json()["data"]
    assert next_of(client, user, moved) is None
    third = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY;COUNT=2")
    fourth = next_of(client, user, third)
    assert fourth is not None
    renewed = put(client, user, fourth["id"], title="t", recurrence="FREQ=DAILY;COUNT=3").json()["data"]
    fifth = next_of(client, user, renewed)
    assert fifth is not None and fifth["due_at"] == "2026-06-03T09:00:00Z"


def test_toggling_back_and_forth_or_completing_again_creates_nothing_more(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
    assert next_of(client, user, task) is not None
    assert complete(client, user, task["id"], {"completed": True}).json()["meta"]["next"] is None
    for _ in range(3):
        assert complete(client, user, task["id"]).json()["meta"]["next"] is None  # pending
        assert complete(client, user, task["id"]).json()["meta"]["next"] is None  # completed again
    assert complete(client, user, task["id"], {"completed": False}).json()["meta"]["next"] is None
    assert complete(client, user, task["id"], {"completed": True}).json()["meta"]["next"] is None
    assert len(tasks_of(client, user)) == 2


def test_a_retry_with_the_same_idempotency_key_creates_nothing_more(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
    key = {"Idempotency-Key": "complete-once"}
    first = complete(client, user, task["id"], **key)
    again = complete(client, user, task["id"], **key)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["meta"]["next"] is not None
    assert len(tasks_of(client, user)) == 2
    assert tasks_of(client, user)[0]["completed"] is True  # the retried toggle did not toggle back


@pytest.mark.parametrize("how", [None, {"completed": True}], ids=["toggle", "set"])
def test_concurrent_completions_create_exactly_one(
    live: LiveServer, user: User, db: psycopg.Connection[Any], how: Any
) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        task = recurring(http, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
    barrier = threading.Barrier(20)

    def one(_: int) -> dict[str, Any]:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            barrier.wait()
            response = complete(http, user, task["id"], how)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    created = [a["meta"]["next"] for a in answers if a["meta"]["next"] is not None]
    assert len(created) == 1
    rows = db.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user.id,)).fetchone()
    counted = db.execute("SELECT task_count FROM users WHERE id = %s", (user.id,)).fetchone()
    assert rows is not None and counted is not None
    assert rows[0] == counted[0] == 2
    if how is None:  # 20 toggles from pending: completed, pending, ... ends pending
        with httpx.Client(base_url=live.url, timeout=30) as http:
            final = http.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"]
        assert final["completed"] is False
        assert final["version"] == task["version"] + 20


def test_if_match_applies_to_a_recurring_completion(client: httpx.Client, user: User) -> None:
    task = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
    stale = complete(client, user, task["id"], **{"If-Match": '"99"'})
    assert_error(stale, 412, "PRECONDITION_FAILED")
    assert len(tasks_of(client, user)) == 1
    fresh = complete(client, user, task["id"], **{"If-Match": f'"{task["version"]}"'})
    assert fresh.status_code == 200 and fresh.json()["meta"]["next"] is not None
    assert_error(complete(client, user, 2**62), 404, "NOT_FOUND")


@pytest.fixture(scope="module")
def quota_server(serve: Callable[[Settings], LiveServer], base_settings: Settings) -> LiveServer:
    return serve(base_settings.with_(tasks_max_per_user=2))


def test_at_the_quota_completing_a_recurring_task_is_409_and_changes_nothing(
    quota_server: LiveServer, user: User, db: psycopg.Connection[Any]
) -> None:
    """The next occurrence counts on the quota. At the quota the completion is refused (nothing
    changed: the task stays pending, its series intact) so the user can make room and complete it."""
    with httpx.Client(base_url=quota_server.url, timeout=30) as http:
        task = recurring(http, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
        create(http, user, completed=False, recurrence=None)
        for attempt in ({"Idempotency-Key": "at-quota"}, {}):
            refused = complete(http, user, task["id"], **attempt)
            assert_error(refused, 409, "QUOTA_EXCEEDED")
            assert http.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task
        # A non-recurring task still toggles at the quota; an exhausted rule needs no room.
        plain = tasks_of(http, user)[1]
        assert complete(http, user, plain["id"]).status_code == 200
        cleared = http.delete("/api/tasks", params={"completed": "true"}, headers=user.headers)
        assert cleared.json() == {"data": {"deleted": 1}}
        following = next_of(http, user, task)
        assert following is not None
    counted = db.execute("SELECT task_count FROM users WHERE id = %s", (user.id,)).fetchone()
    assert counted is not None and counted[0] == 2


# --- GET /api/tags ------------------------------------------------------------------------------


def test_tags_are_counted_grouped_case_insensitively_most_used_first(client: httpx.Client, user: User) -> None:
    for tags in (["Work", "home"], ["work", "urgent"], ["work"], ["Home"], ["zeta"], ["alpha"], []):
        create(client, user, tags=tags)
    response = client.get("/api/tags", headers=user.headers)
    assert response.status_code == 200
    # work: spelled "work" twice and "Work" once -> "work"; home: one each -> "Home" (code-point order).
    assert response.json() == {
        "data": [
            {"name": "work", "count": 3},
            {"name": "Home", "count": 2},
            {"name": "alpha", "count": 1},
            {"name": "urgent", "count": 1},
            {"name": "zeta", "count": 1},
        ]
    }


def test_tags_are_the_callers_only(client: httpx.Client, user: User, other_user: User) -> None:
    create(client, other_user, tags=["secret"])
    assert client.get("/api/tags", headers=user.headers).json() == {"data": []}
    assert_error(client.get("/api/tags"), 401, "UNAUTHORIZED")


# --- DELETE /api/tasks?completed=true -----------------------------------------------------------


def test_clear_completed_deletes_only_the_callers_completed_tasks(
    client: httpx.Client, user: User, other_user: User, db: psycopg.Connection[Any]
) -> None:
    kept = [create(client, user, completed=False, recurrence=None)["id"] for _ in range(2)]
    gone = [create(client, user, completed=True, recurrence=None)["id"] for _ in range(3)]
    theirs = create(client, other_user, completed=True, recurrence=None)
    cursor = client.get("/api/tasks/changes", headers=user.headers).json()["meta"]["cursor"]
    response = client.delete("/api/tasks", params={"completed": "true"}, headers=user.headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"deleted": 3}}
    assert sorted(t["id"] for t in tasks_of(client, user)) == sorted(kept)
    assert client.get(f"/api/tasks/{theirs['id']}", headers=other_user.headers).status_code == 200
    # Tombstones for the changes feed, and the quota uncounted.
    feed = client.get("/api/tasks/changes", params={"since": cursor}, headers=user.headers).json()["data"]
    assert sorted(c["id"] for c in feed) == sorted(gone) and {c["op"] for c in feed} == {"delete"}
    counted = db.execute("SELECT task_count FROM users WHERE id = %s", (user.id,)).fetchone()
    assert counted is not None and counted[0] == 2
    # Again: nothing left to delete.
    assert client.delete("/api/tasks", params={"completed": "true"}, headers=user.headers).json() == {
        "data": {"deleted": 0}
    }


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?completed=false",
        "?completed=1",
        "?completed=true&q=x",
        "?status=completed",
        "?completed=true&completed=true",
    ],
)
def test_any_other_delete_of_the_collection_is_422_and_deletes_nothing(
    client: httpx.Client, user: User, query: str
) -> None:
    create(client, user, completed=True, recurrence=None)
    create(client, user, completed=False, recurrence=None)
    response = client.delete(f"/api/tasks{query}", headers=user.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    assert client.delete(f"/api/tasks/{query}", headers=user.headers).status_code == 422  # trailing slash too
    assert len(tasks_of(client, user)) == 2


def test_clear_completed_replays_with_an_idempotency_key_and_refuses_if_match(client: httpx.Client, user: User) -> None:
    create(client, user, completed=True, recurrence=None)
    key = {**user.headers, "Idempotency-Key": "clear-1"}
    first = client.delete("/api/tasks", params={"completed": "true"}, headers=key)
    create(client, user, completed=True, recurrence=None)
    again = client.delete("/api/tasks", params={"completed": "true"}, headers=key)
    assert first.json() == again.json() == {"data": {"deleted": 1}}
    assert again.headers["idempotent-replayed"] == "true"
    assert len(tasks_of(client, user)) == 1  # the replay deleted nothing
    conditional = {**user.headers, "If-Match": "*"}
    response = client.delete("/api/tasks", params={"completed": "true"}, headers=conditional)
    assert assert_error(response, 422)["details"][0]["field"] == "If-Match"
    assert len(tasks_of(client, user)) == 1


def test_update_factory_bodies_round_trip(client: httpx.Client, user: User) -> None:
    """The factories' organizing fields are valid by construction, on POST and PUT alike."""
    for _ in range(10):
        task = create(client, user)
        body = update_body()
        response = put(client, user, task["id"], **body)
        assert response.status_code == 200, response.text
        for key in ("priority", "due_at"):
            assert response.json()["data"][key] == (body[key] if body[key] is not None or key == "due_at" else "none")
    for _ in range(5):
        assert client.post("/api/tasks", json=recurring_body(), headers=user.headers).status_code == 201


# --- list filters and sorts ---------------------------------------------------------------------


def listed(client: httpx.Client, user: User, **params: Any) -> list[int]:
    response = client.get("/api/tasks", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["total"] == len(body["data"]) or "limit" in params
    return [t["id"] for t in body["data"]]


def paged(client: httpx.Client, user: User, page: int, **params: Any) -> list[int]:
    """Every id of the list, walked with `after` in pages of `page`."""
    ids: list[int] = []
    after = None
    for _ in range(100):
        query = {**params, "limit": page, **({"after": after} if after else {})}
        body = client.get("/api/tasks", params=query, headers=user.headers).json()
        ids += [t["id"] for t in body["data"]]
        after = body["meta"]["next_cursor"]
        if after is None:
            return ids
    raise AssertionError("paging did not end")


@pytest.fixture
def organized(client: httpx.Client, user: User) -> dict[str, int]:
    """Nine tasks with priorities, tags and due dates (ties included); name -> id."""
    specs = {
        "a": {"priority": "high", "tags": ["Work", "urgent"], "due_at": "2020-01-01T10:00:00Z"},
        "b": {"priority": "low", "tags": ["work"], "due_at": "2030-06-01T10:00:00Z"},
        "c": {"priority": "none", "tags": [], "due_at": None},
        "d": {"priority": "high", "tags": ["home"], "due_at": "2030-06-01T10:00:00Z"},
        "e": {"priority": "medium", "tags": ["WORK", "Urgent", "home"], "due_at": "2020-01-01T10:00:00Z"},
        "f": {"priority": "low", "tags": ["urgent"], "due_at": None},
        "g": {"priority": "medium", "tags": [], "due_at": "2025-03-01T00:00:00Z"},
        "h": {"priority": "none", "tags": ["work"], "due_at": "2020-01-01T10:00:00Z", "completed": True},
        "i": {"priority": "high", "tags": [], "due_at": None},
    }
    ids = {}
    for name, spec in specs.items():
        body = {"title": name, "completed": False, "recurrence": None, **spec}
        response = client.post("/api/tasks", json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["data"]["id"]
    return ids


def names(ids: dict[str, int], listed_ids: list[int]) -> str:
    by_id = {v: k for k, v in ids.items()}
    return "".join(by_id[i] for i in listed_ids)


def test_priority_filter_one_or_a_list(client: httpx.Client, user: User, organized: dict[str, int]) -> None:
    assert names(organized, listed(client, user, priority="high", sort="created_at")) == "adi"
    assert names(organized, listed(client, user, priority="low,medium", sort="created_at")) == "befg"
    assert names(organized, listed(client, user, priority="none,none", sort="created_at")) == "ch"


def test_tag_filter_every_tag_case_insensitive(client: httpx.Client, user: User, organized: dict[str, int]) -> None:
    assert names(organized, listed(client, user, tag="work", sort="created_at")) == "abeh"
    assert names(organized, listed(client, user, tag=["WORK", " urgent "], sort="created_at")) == "ae"
    assert names(organized, listed(client, user, tag=["work", "urgent", "Home"], sort="created_at")) == "e"
    assert listed(client, user, tag="nothing") == []


def test_due_filters_half_open_and_without_due_date_never(
    client: httpx.Client, user: User, organized: dict[str, int]
) -> None:
    assert names(organized, listed(client, user, due_before="2030-06-01T10:00:00Z", sort="created_at")) == "aegh"
    assert names(organized, listed(client, user, due_after="2030-06-01T10:00:00Z", sort="created_at")) == "bd"
    window = {"due_after": "2020-01-01T12:00:00+02:00", "due_before": "2025-03-01T00:00:00.000001Z"}
    assert names(organized, listed(client, user, sort="created_at", **window)) == "aegh"
    assert (
        names(organized, listed(client, user, due_after="2020-01-01T10:00:01Z", due_before="2026-01-01T00:00:00Z"))
        == "g"
    )


def test_overdue_is_due_before_now_and_pending(client: httpx.Client, user: User, organized: dict[str, int]) -> None:
    assert names(organized, listed(client, user, overdue="true", sort="created_at")) == "aeg"
    assert names(organized, listed(client, user, overdue="false", sort="created_at")) == "bcdfhi"
    combined = {"overdue": "true", "tag": "work", "priority": "high,medium", "q": "a"}
    assert names(organized, listed(client, user, **combined)) == "a"
    assert names(organized, listed(client, user, overdue="true", completed="true")) == ""


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("priority", "urgent"),
        ("priority", "high,"),
        ("priority", "HIGH"),
        ("priority", ""),
        ("tag", ""),
        ("tag", "x" * 51),
        ("tag", "a\nb"),
        ("due_before", "2026-01-01T00:00:00"),
        ("due_before", "2026-01-01"),
        ("due_after", "yesterday"),
        ("due_after", "2026-13-01T00:00:00Z"),
        ("overdue", "maybe"),
        ("overdue", "1"),
        ("sort", "due"),
        ("sort", "+priority"),
    ],
)
def test_bad_filter_values_are_422_naming_the_parameter(
    client: httpx.Client, user: User, param: str, value: str
) -> None:
    response = client.get("/api/tasks", params={param: value}, headers=user.headers)
    assert assert_error(response, 422, "VALIDATION_ERROR")["details"][0]["field"] == param


def test_too_many_tag_filters_is_422(client: httpx.Client, user: User) -> None:
    response = client.get("/api/tasks", params={"tag": [f"t{i}" for i in range(21)]}, headers=user.headers)
    assert assert_error(response, 422)["details"][0]["field"] == "tag"


def test_sort_by_due_date_without_one_last_either_way_ties_by_id(
    client: httpx.Client, user: User, organized: dict[str, int]
) -> None:
    assert names(organized, listed(client, user, sort="due_at")) == "aehgbdcfi"
    assert names(organized, listed(client, user, sort="-due_at")) == "dbgheaifc"


def test_sort_by_priority_ties_by_id(client: httpx.Client, user: User, organized: dict[str, int]) -> None:
    assert names(organized, listed(client, user, sort="priority")) == "chbfegadi"
    assert names(organized, listed(client, user, sort="-priority")) == "idagefbhc"


@pytest.mark.parametrize("sort", ["due_at", "-due_at", "priority", "-priority"])
@pytest.mark.parametrize("page", [1, 2, 4])
def test_new_sorts_page_with_after_exactly(
    client: httpx.Client, user: User, organized: dict[str, int], sort: str, page: int
) -> None:
    assert paged(client, user, page, sort=sort) == listed(client, user, sort=sort)
    assert paged(client, user, page, sort=sort, tag="work") == listed(client, user, sort=sort, tag="work")
    assert paged(client, user, page, sort=sort, q="e") == listed(client, user, sort=sort, q="e")


def test_a_cursor_of_another_sort_is_422(client: httpx.Client, user: User, organized: dict[str, int]) -> None:
    cursor = client.get("/api/tasks", params={"sort": "due_at", "limit": 1}, headers=user.headers).json()
    after = cursor["meta"]["next_cursor"]
    response = client.get("/api/tasks", params={"sort": "priority", "after": after}, headers=user.headers)
    assert assert_error(response, 422)["details"][0]["field"] == "after"


def test_filters_are_the_callers_only(
    client: httpx.Client, user: User, other_user: User, organized: dict[str, int]
) -> None:
    assert listed(client, other_user, tag="work") == []
    assert listed(client, other_user, priority="high") == []
    assert listed(client, other_user, overdue="true") == []


def test_due_filters_beyond_the_calendar_in_utc_match_nothing_or_everything(
    client: httpx.Client, user: User, organized: dict[str, int]
) -> None:
    """Valid RFC 3339 whose UTC form is before year 1 or after 9999: before or after every due date."""
    assert listed(client, user, due_before="0001-01-01T00:00:00+01:00") == []
    assert names(organized, listed(client, user, due_before="9999-12-31T23:59:59-01:00", sort="created_at")) == "abdegh"


def test_a_recurring_completion_and_clearing_reach_the_changes_feed(client: httpx.Client, user: User) -> None:
    """Live events read the changes feed: the completed task and its next occurrence come as
    upserts, a cleared task as a delete."""
    task = recurring(client, user, "2026-06-01T09:00:00Z", "FREQ=DAILY")
    cursor = client.get("/api/tasks/changes", headers=user.headers).json()["meta"]["cursor"]
    done = complete(client, user, task["id"]).json()
    feed = client.get("/api/tasks/changes", params={"since": cursor}, headers=user.headers).json()
    assert sorted((c["op"], c["task"]["id"]) for c in feed["data"]) == sorted(
        [("upsert", done["data"]["id"]), ("upsert", done["meta"]["next"]["id"])]
    )
    assert {c["task"]["id"]: c["task"] for c in feed["data"]}[done["meta"]["next"]["id"]] == done["meta"]["next"]
    cleared = client.delete("/api/tasks", params={"completed": "true"}, headers=user.headers)
    assert cleared.json() == {"data": {"deleted": 1}}
    after = client.get("/api/tasks/changes", params={"since": feed["meta"]["cursor"]}, headers=user.headers).json()
    assert after["data"] == [{"op": "delete", "id": task["id"]}]
