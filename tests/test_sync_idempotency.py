"""`Idempotency-Key` on task writes, over real HTTP and PostgreSQL: retries change nothing."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from assertions import assert_error, nothing_changes
from conftest import LiveServer, User
from harness import wait_until

from app.config import Settings


def keyed(user: User, key: str | None = None) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key or str(uuid.uuid4())}


def count_tasks(db: psycopg.Connection[Any], user: User) -> int:
    row = db.execute("SELECT count(*) FROM tasks WHERE user_id = %s", (user.id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_retried_create_creates_once_and_replays_the_first_answer(
    client: httpx.Client, user: User, db: psycopg.Connection[Any]
) -> None:
    headers = keyed(user)
    first = client.post("/api/tasks", json={"title": "once"}, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    with nothing_changes(db):
        again = client.post("/api/tasks", json={"title": "once"}, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == "application/json"
    assert count_tasks(db, user) == 1


def test_a_retried_toggle_toggles_once(client: httpx.Client, user: User) -> None:
    task_id = client.post("/api/tasks", json={"title": "t"}, headers=user.headers).json()["data"]["id"]
    headers = keyed(user)
    answers = [client.patch(f"/api/tasks/{task_id}/complete", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.json()["data"]["completed"] is True for a in answers)
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    current = client.get(f"/api/tasks/{task_id}", headers=user.headers).json()["data"]
    assert current["completed"] is True and current["version"] == 2


def test_put_and_delete_replay_too(client: httpx.Client, user: User, db: psycopg.Connection[Any]) -> None:
    task_id = client.post("/api/tasks", json={"title": "t"}, headers=user.headers).json()["data"]["id"]
    put_headers = keyed(user)
    first = client.put(f"/api/tasks/{task_id}", json={"title": "edited"}, headers=put_headers)
    client.put(f"/api/tasks/{task_id}", json={"title": "later"}, headers=user.headers)
    with nothing_changes(db):
        again = client.put(f"/api/tasks/{task_id}", json={"title": "edited"}, headers=put_headers)
    assert again.status_code == 200 and again.content == first.content  # the stored answer, not a redo
    delete_headers = keyed(user)
    assert client.delete(f"/api/tasks/{task_id}", headers=delete_headers).status_code == 204
    replay = client.delete(f"/api/tasks/{task_id}", headers=delete_headers)
    assert replay.status_code == 204 and replay.content == b""
    assert replay.headers["idempotent-replayed"] == "true"
    assert "content-type" not in replay.headers and "content-length" not in replay.headers
    assert_error(client.delete(f"/api/tasks/{task_id}", headers=keyed(user)), 404)  # a new key: really runs


def test_an_error_answer_is_stored_and_replayed(client: httpx.Client, user: User) -> None:
    headers = keyed(user)
    assert_error(client.patch("/api/tasks/999999999/complete", headers=headers), 404)
    replay = client.patch("/api/tasks/999999999/complete", headers=headers)
    assert_error(replay, 404)
    assert replay.headers["idempotent-replayed"] == "true"


def test_the_same_key_for_another_request_is_422_and_changes_nothing(
    client: httpx.Client, user: User, db: psycopg.Connection[Any]
) -> None:
    headers = keyed(user)
    task_id = client.post("/api/tasks", json={"title": "a"}, headers=headers).json()["data"]["id"]
    with nothing_changes(db):
        for response in (
            client.post("/api/tasks", json={"title": "b"}, headers=headers),  # another body
            client.put(f"/api/tasks/{task_id}", json={"title": "a"}, headers=headers),  # another method and path
            client.patch(f"/api/tasks/{task_id}/complete", headers=headers),
            client.delete(f"/api/tasks/{task_id}", headers=headers),
        ):
            assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED")


def test_keys_are_per_user(client: httpx.Client, user: User, other_user: User, db: psycopg.Connection[Any]) -> None:
    key = str(uuid.uuid4())
    assert client.post("/api/tasks", json={"title": "a"}, headers=keyed(user, key)).status_code == 201
    theirs = client.post("/api/tasks", json={"title": "a"}, headers=keyed(other_user, key))
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert count_tasks(db, other_user) == 1


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "caf\u00e9", "tab\there"])
def test_an_invalid_key_is_422_and_nothing_is_done(
    client: httpx.Client, user: User, db: psycopg.Connection[Any], key: str
) -> None:
    with nothing_changes(db):
        response = client.post(
            "/api/tasks",
            json={"title": "never"},
            headers={**user.headers, "Idempotency-Key": key.encode()},  # raw UTF-8 bytes for the non-ASCII one
        )
    error = assert_error(response, 422)
    assert error["details"][0]["field"].lower().replace("_", "-") == "idempotency-key"


def test_the_longest_valid_key_works(client: httpx.Client, user: User) -> None:
    key = "~" + "k" * 254
    assert client.post("/api/tasks", json={"title": "x"}, headers=keyed(user, key)).status_code == 201
    assert client.post("/api/tasks", json={"title": "x"}, headers=keyed(user, key)).headers["idempotent-replayed"]


def test_a_body_that_fails_validation_does_not_burn_the_key(client: httpx.Client, user: User) -> None:
    headers = keyed(user)
    assert_error(client.post("/api/tasks", json={"title": ""}, headers=headers), 422)
    assert client.post("/api/tasks", json={"title": "fixed"}, headers=headers).status_code == 201


def test_fifty_concurrent_retries_create_exactly_one_task(
    live: LiveServer, user: User, db: psycopg.Connection[Any]
) -> None:
    headers = keyed(user)
    barrier = threading.Barrier(50)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def retry() -> None:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            barrier.wait()
            response = http.post("/api/tasks", json={"title": "one"}, headers=headers)
            with lock:
                answers.append(response)

    threads = [threading.Thread(target=retry) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count_tasks(db, user) == 1
    created = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(created) + len(busy) == 50, sorted(a.status_code for a in answers)
    assert len({a.content for a in created}) == 1
    assert sum("idempotent-replayed" not in a.headers for a in created) <= 1
    for answer in busy:
        assert_error(answer, 409, "IDEMPOTENCY_KEY_IN_USE")
        assert int(answer.headers["retry-after"]) >= 1
    # Retried once the first has finished, the busy ones get the stored answer too.
    with httpx.Client(base_url=live.url, timeout=30) as http:
        late = http.post("/api/tasks", json={"title": "one"}, headers=headers)
    assert late.status_code == 201 and late.headers["idempotent-replayed"] == "true"
    assert late.content in {a.content for a in created} or not created
    assert count_tasks(db, user) == 1


def test_a_duplicate_while_the_first_runs_is_409(
    live: LiveServer, user: User, db: psycopg.Connection[Any], database_url: str
) -> None:
    """The first request is held inside its transaction (its task row locked from outside)."""
    task_id = httpx.post(f"{live.url}/api/tasks", json={"title": "t"}, headers=user.headers).json()["data"]["id"]
    headers = keyed(user)
    first: dict[str, httpx.Response] = {}
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM tasks WHERE user_id = %s AND id = %s FOR UPDATE", (user.id, task_id))
        thread = threading.Thread(
            target=lambda: first.setdefault(
                "r", httpx.patch(f"{live.url}/api/tasks/{task_id}/complete", headers=headers, timeout=30)
            )
        )
        thread.start()
        time.sleep(0.5)  # the first now holds the key's lock and waits for the task row
        busy = httpx.patch(f"{live.url}/api/tasks/{task_id}/complete", headers=headers, timeout=30)
        blocker.rollback()
    thread.join()
    assert_error(busy, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert first["r"].status_code == 200 and first["r"].json()["data"]["completed"] is True
    after = httpx.patch(f"{live.url}/api/tasks/{task_id}/complete", headers=headers, timeout=30)
    assert after.content == first["r"].content and after.headers["idempotent-replayed"] == "true"
    row = db.execute("SELECT completed, version FROM tasks WHERE id = %s", (task_id,)).fetchone()
    assert row == (True, 2)


def test_an_expired_key_runs_again_and_the_purge_removes_it(
    serve: Any, base_settings: Settings, user: User, db: psycopg.Connection[Any]
) -> None:
    server = serve(base_settings.with_(idempotency_ttl_s=1))
    headers = keyed(user)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/api/tasks", json={"title": "a"}, headers=headers).status_code == 201
        time.sleep(1.2)
        again = http.post("/api/tasks", json={"title": "a"}, headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert count_tasks(db, user) == 2

    def stored_keys() -> int:
        row = db.execute("SELECT count(*) FROM idempotency_keys WHERE user_id = %s", (user.id,)).fetchone()
        assert row is not None
        return int(row[0])

    assert stored_keys() == 1
    time.sleep(1.2)
    serve(base_settings.with_(idempotency_ttl_s=1))  # every worker purges when it starts
    wait_until(lambda: stored_keys() == 0, timeout=10, what="the purge")
