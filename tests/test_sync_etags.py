"""Versions, ETags and conditional requests (If-Match -> 412, If-None-Match -> 304), over real HTTP."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import psycopg
from assertions import assert_error, nothing_changes
from conftest import LiveServer, User


def create(client: httpx.Client, user: User, **body: Any) -> httpx.Response:
    response = client.post("/api/tasks", json={"title": "t", **body}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response


def test_version_starts_at_one_and_the_etag_carries_it(client: httpx.Client, user: User) -> None:
    created = create(client, user)
    task = created.json()["data"]
    assert task["version"] == 1
    assert created.headers["etag"] == '"1"'
    got = client.get(f"/api/tasks/{task['id']}", headers=user.headers)
    assert got.headers["etag"] == '"1"' and got.json()["data"]["version"] == 1


def test_every_change_bumps_the_version_and_no_change_does_not(client: httpx.Client, user: User) -> None:
    task_id = create(client, user, title="a").json()["data"]["id"]
    url = f"/api/tasks/{task_id}"

    def version(response: httpx.Response) -> int:
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{response.json()["data"]["version"]}"'
        return int(response.json()["data"]["version"])

    assert version(client.put(url, json={"title": "b"}, headers=user.headers)) == 2
    assert version(client.put(url, json={"title": "b"}, headers=user.headers)) == 2  # unchanged PUT
    assert version(client.patch(f"{url}/complete", headers=user.headers)) == 3  # toggle
    assert version(client.patch(f"{url}/complete", json={"completed": True}, headers=user.headers)) == 3  # same value
    assert version(client.patch(f"{url}/complete", json={"completed": False}, headers=user.headers)) == 4
    assert version(client.put(url, json={"title": "b", "description": "d"}, headers=user.headers)) == 5


def test_if_match_with_the_current_version_applies(client: httpx.Client, user: User) -> None:
    task_id = create(client, user).json()["data"]["id"]
    url = f"/api/tasks/{task_id}"
    put = client.put(url, json={"title": "new"}, headers={**user.headers, "If-Match": '"1"'})
    assert put.status_code == 200 and put.headers["etag"] == '"2"'
    toggled = client.patch(f"{url}/complete", headers={**user.headers, "If-Match": '"7", "2"'})
    assert toggled.status_code == 200 and toggled.json()["data"]["version"] == 3
    assert client.put(url, json={"title": "x"}, headers={**user.headers, "If-Match": "*"}).status_code == 200
    assert client.delete(url, headers={**user.headers, "If-Match": '"4"'}).status_code == 204


def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.Client, user: User, db: psycopg.Connection[Any]
) -> None:
    task_id = create(client, user).json()["data"]["id"]
    url = f"/api/tasks/{task_id}"
    client.put(url, json={"title": "v2"}, headers=user.headers)
    for stale in ('"1"', 'W/"2"', "garbage", '"01x"'):  # weak tags never match strongly
        stale_headers = {**user.headers, "If-Match": stale}
        with nothing_changes(db):
            for response in (
                client.put(url, json={"title": "lost"}, headers=stale_headers),
                client.patch(f"{url}/complete", headers=stale_headers),
                client.patch(f"{url}/complete", json={"completed": True}, headers=stale_headers),
                client.delete(url, headers=stale_headers),
            ):
                error = assert_error(response, 412)
                assert "details" not in error
    assert client.get(url, headers=user.headers).json()["data"]["title"] == "v2"


def test_if_match_on_a_missing_or_foreign_task_is_404(client: httpx.Client, user: User, other_user: User) -> None:
    task_id = create(client, other_user).json()["data"]["id"]
    for if_match in ("*", '"1"'):
        headers = {**user.headers, "If-Match": if_match}
        assert_error(client.put(f"/api/tasks/{task_id}", json={"title": "x"}, headers=headers), 404)
        assert_error(client.delete(f"/api/tasks/{task_id}", headers=headers), 404)
        assert_error(client.patch(f"/api/tasks/{task_id}/complete", headers=headers), 404)


def test_two_clients_racing_with_if_match_exactly_one_wins(
    live: LiveServer, user: User, db: psycopg.Connection[Any]
) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as setup:
        task_id = create(setup, user, title="base").json()["data"]["id"]
    barrier = threading.Barrier(2)
    results: dict[str, httpx.Response] = {}

    def edit(name: str) -> None:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            barrier.wait()
            results[name] = http.put(
                f"/api/tasks/{task_id}", json={"title": name}, headers={**user.headers, "If-Match": '"1"'}
            )

    for _ in range(10):
        db.execute("UPDATE tasks SET version = 1, title = 'base' WHERE user_id = %s AND id = %s", (user.id, task_id))
        results.clear()
        threads = [threading.Thread(target=edit, args=(name,)) for name in ("alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(r.status_code for r in results.values())
        assert statuses == [200, 412], statuses
        winner = next(name for name, r in results.items() if r.status_code == 200)
        row = db.execute(
            "SELECT title, version FROM tasks WHERE user_id = %s AND id = %s", (user.id, task_id)
        ).fetchone()
        assert row == (winner, 2)


def test_if_none_match_on_a_task_is_304_without_a_body(client: httpx.Client, user: User) -> None:
    task_id = create(client, user).json()["data"]["id"]
    url = f"/api/tasks/{task_id}"
    for header in ('"1"', 'W/"1"', '"9", "1"', "*"):
        response = client.get(url, headers={**user.headers, "If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b"" and response.headers["etag"] == '"1"'
    client.patch(f"{url}/complete", headers=user.headers)
    changed = client.get(url, headers={**user.headers, "If-None-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'


def test_a_list_etag_moves_with_any_change_of_its_result(client: httpx.Client, user: User, other_user: User) -> None:
    def list_etag(**params: Any) -> str:
        response = client.get("/api/tasks", params=params, headers=user.headers)
        assert response.status_code == 200
        return str(response.headers["etag"])

    empty = list_etag()
    assert list_etag() == empty  # stable
    first = create(client, user).json()["data"]["id"]
    created = list_etag()
    assert created != empty
    assert list_etag(completed="true") != created  # another query, another tag
    create(client, other_user)  # someone else's write: not this list's business
    assert list_etag() == created
    client.patch(f"/api/tasks/{first}/complete", headers=user.headers)
    toggled = list_etag()
    assert toggled != created
    client.delete(f"/api/tasks/{first}", headers=user.headers)
    assert list_etag() == empty  # the same (empty) representation again: the same tag


def test_if_none_match_on_a_list_is_304_until_something_changes(client: httpx.Client, user: User) -> None:
    task_id = create(client, user).json()["data"]["id"]
    etag = client.get("/api/tasks", headers=user.headers).headers["etag"]
    for params in ({}, {"limit": 5}):
        conditional = {
            **user.headers,
            "If-None-Match": client.get("/api/tasks", params=params, headers=user.headers).headers["etag"],
        }
        response = client.get("/api/tasks", params=params, headers=conditional)
        assert response.status_code == 304 and response.content == b""
    client.put(f"/api/tasks/{task_id}", json={"title": "changed"}, headers=user.headers)
    response = client.get("/api/tasks", headers={**user.headers, "If-None-Match": etag})
    assert response.status_code == 200 and response.headers["etag"] != etag
    assert response.json()["data"][0]["title"] == "changed"
    # A contradictory filter pair is always empty: its tag never changes, and 304 works there too.
    contradiction = {"completed": "true", "status": "pending"}
    tag = client.get("/api/tasks", params=contradiction, headers=user.headers).headers["etag"]
    response = client.get("/api/tasks", params=contradiction, headers={**user.headers, "If-None-Match": tag})
    assert response.status_code == 304
