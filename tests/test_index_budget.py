"""The index budget (migration 0004): writes stay HOT, and the migration does not stall writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from conftest import LiveServer, User, scratch_database
from harness import wait_until
from yoyo import get_backend, read_migrations

from app.config import Settings
from app.db import SqlFiles
from app.migrate import MIGRATIONS_DIR, apply, yoyo_url
from app.tasks.paging import NO_CURSOR

BUDGET_MIGRATION = "0004_index_budget"
DROPPED = {"tasks_user_completed_created_idx", "tasks_user_updated_idx"}


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "index_budget", migrate=False) as url:
        yield url


def task_indexes(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'").fetchall()
    return {r[0] for r in rows}


def apply_before(url: str, migration_id: str) -> None:
    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS_DIR)).filter(lambda m: m.id < migration_id)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))


def test_writes_are_hot_updates(scratch_url: str, base_settings: Settings) -> None:
    """Toggle, set, and a PUT that changes `completed` through HTTP: every one is a HOT update (no
    index entry written). An index on a column that every write changes (`updated_at`, `completed`)
    breaks this. (A PUT that changes the title or description is not HOT where a search index
    covers them; that is the price of the index, paid by those edits only.)
    """
    apply(scratch_url)
    user = User()
    with LiveServer(base_settings.with_(database_url=scratch_url)) as server, httpx.Client(base_url=server.url) as http:
        titles = {
            http.post("/api/tasks", json={"title": f"task {i}"}, headers=user.headers).json()["data"]["id"]: f"task {i}"
            for i in range(5)
        }
        writes = 0
        for round_ in range(4):
            for task_id, title in titles.items():
                assert http.patch(f"/api/tasks/{task_id}/complete", headers=user.headers).status_code == 200
                body = {"completed": round_ % 2 == 0}
                assert http.patch(f"/api/tasks/{task_id}/complete", json=body, headers=user.headers).status_code == 200
                body = {"title": title, "completed": round_ % 2 == 1}
                assert http.put(f"/api/tasks/{task_id}", json=body, headers=user.headers).status_code == 200
                writes += 3

        with psycopg.connect(scratch_url, autocommit=True) as conn:

            def counters() -> tuple[int, int]:
                conn.execute("SELECT pg_stat_clear_snapshot()")
                row = conn.execute(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'tasks'"
                ).fetchone()
                assert row is not None
                return int(row[0]), int(row[1])

            # Backends report their counters within a second or so of going idle.
            wait_until(lambda: counters()[0] >= writes, timeout=15, what="update counters")
            updated, hot = counters()
    assert updated >= writes
    assert hot == updated


def test_budget_migration_does_not_block_writers(scratch_url: str) -> None:
    """0004 runs on a populated table while a transaction holds it: other writers keep going.

    A plain DROP INDEX would queue for an ACCESS EXCLUSIVE lock behind the open transaction, and
    every later reader and writer would queue behind it (here: fail on lock_timeout).
    """
    apply_before(scratch_url, BUDGET_MIGRATION)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('u1'), ('u2')")
        conn.execute("INSERT INTO tasks (user_id, title) SELECT 'u1', 't' || g FROM generate_series(1, 5000) g")
        assert task_indexes(conn) >= DROPPED

    holder = psycopg.connect(scratch_url)
    try:
        holder.execute("INSERT INTO tasks (user_id, title) VALUES ('u1', 'open transaction')")  # stays open
        migrating = threading.Thread(target=apply, args=(scratch_url,), daemon=True)
        migrating.start()
        with psycopg.connect(scratch_url, autocommit=True) as writer:
            writer.execute("SET lock_timeout = '2s'")
            for i in range(20):
                writer.execute("INSERT INTO tasks (user_id, title) VALUES ('u2', %s)", (f"during {i}",))
                writer.execute("UPDATE tasks SET completed = NOT completed WHERE user_id = 'u1' AND id = %s", (i + 1,))
                writer.execute("SELECT count(*) FROM tasks WHERE user_id = 'u2'")
        holder.commit()
        migrating.join(timeout=60)
        assert not migrating.is_alive()
    finally:
        holder.close()

    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert not (DROPPED & task_indexes(conn))
        row = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'tasks'").fetchone()
        assert row is not None and "fillfactor=85" in (row[0] or [])


def test_untagged_tasks_are_not_in_the_tag_index_and_tag_pages_use_it(scratch_url: str) -> None:
    """The tag index is partial (`WHERE tag_keys <> '{}'`): creates and text edits of untagged tasks
    never write it. The `tag=` statements spell that predicate beside `@>`; without it the planner
    cannot use a partial index at all (here it should: 10 tagged tasks among 4,000)."""
    apply(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        definition = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'tasks_user_tags_idx'").fetchone()
        assert definition is not None and "WHERE (tag_keys <> '{}'::text[])" in definition[0]
        conn.execute("INSERT INTO users (id, email, name, task_count) VALUES ('tagger', 't@example.com', 'T', 4000)")
        conn.execute(
            "INSERT INTO tasks (user_id, title, tags, tag_keys) SELECT 'tagger', 't' || g,"
            " CASE WHEN g % 400 = 0 THEN '{Work}'::text[] ELSE '{}' END,"
            " CASE WHEN g % 400 = 0 THEN '{work}'::text[] ELSE '{}' END FROM generate_series(1, 4000) g"
        )
        conn.execute("ANALYZE tasks")
        params: dict[str, Any] = {
            "user_id": "tagger",
            "completed": None,
            "pattern": None,
            "sort": "title",
            "limit": 21,
            "offset": 0,
            **NO_CURSOR,
            "priorities": None,
            "tags": ["work"],
            "due_before": None,
            "due_after": None,
            "overdue": None,
        }
        sql = SqlFiles()
        rows = conn.execute(sql["tasks/list"], params, prepare=False).fetchall()
        assert len(rows) == 10
        plan = "\n".join(
            row[0] for row in conn.execute(b"EXPLAIN " + sql["tasks/list"], params, prepare=False).fetchall()
        )
        assert "tasks_user_tags_idx" in plan
        tags = conn.execute(sql["tasks/tags"], {"user_id": "tagger"}).fetchall()
        assert tags == [("Work", 10)]
