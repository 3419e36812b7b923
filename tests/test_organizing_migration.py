"""Migration 0007 (organizing): existing rows stay valid, it runs beside writers on a populated table
without a long lock, gives up (rather than stall everyone) behind a long transaction, runs again,
and rolls back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import scratch_database
from yoyo import get_backend, read_migrations

from app.migrate import MIGRATIONS_DIR, apply, rollback, yoyo_url

MIGRATION = "0007_organizing"
NEW_COLUMNS = {"priority", "tags", "tag_keys", "due_at", "recurrence", "completed_at", "occurrence", "recurred"}


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "organizing", migrate=False) as url:
        yield url


def apply_before(url: str, migration_id: str) -> None:
    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS_DIR)).filter(lambda m: m.id < migration_id)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))


def columns(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks'").fetchall()
    return {r[0] for r in rows}


def populate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('u1'), ('u2')")
        conn.execute(
            "INSERT INTO tasks (user_id, title, completed)"
            " SELECT 'u1', 't' || g, g % 3 = 0 FROM generate_series(1, 20000) g"
        )


def test_existing_rows_stay_valid_and_the_migration_rolls_back(scratch_url: str) -> None:
    apply_before(scratch_url, MIGRATION)
    populate(scratch_url)
    apply(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert columns(conn) >= NEW_COLUMNS
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE priority = 'none' AND tags = '{}' AND due_at IS NULL"
            " AND recurrence IS NULL AND completed_at IS NULL AND NOT recurred), count(*) FROM tasks"
        ).fetchone()
        assert row is not None and row[0] == row[1] == 20000
        valid = conn.execute(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'tasks_organizing_check'"
        ).fetchone()
        assert valid == (True,)
    rollback(scratch_url, steps=1)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert not (columns(conn) & NEW_COLUMNS)
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (20000,)
    apply(scratch_url)


def test_writers_keep_going_while_it_runs(scratch_url: str) -> None:
    apply_before(scratch_url, MIGRATION)
    populate(scratch_url)
    migrating = threading.Thread(target=apply, args=(scratch_url,), daemon=True)
    migrating.start()
    with psycopg.connect(scratch_url, autocommit=True) as writer:
        writer.execute("SET lock_timeout = '2s'")
        for i in range(50):
            writer.execute("INSERT INTO tasks (user_id, title) VALUES ('u2', %s)", (f"during {i}",))
            writer.execute("UPDATE tasks SET completed = NOT completed WHERE user_id = 'u1' AND id = %s", (i + 1,))
            writer.execute("SELECT count(*) FROM tasks WHERE user_id = 'u2'")
    migrating.join(timeout=60)
    assert not migrating.is_alive()
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert columns(conn) >= NEW_COLUMNS


def test_behind_a_long_transaction_it_gives_up_soon_and_runs_again(scratch_url: str) -> None:
    """A transaction that holds the table would make ADD COLUMN wait, and every reader and writer
    queue behind it for as long as it lasts. lock_timeout makes the migration give up within
    seconds instead; run again later, it completes (every statement can run twice)."""
    apply_before(scratch_url, MIGRATION)
    populate(scratch_url)
    holder = psycopg.connect(scratch_url)
    failure: list[BaseException] = []

    def migrate() -> None:
        try:
            apply(scratch_url)
        except BaseException as exc:
            failure.append(exc)

    try:
        holder.execute("INSERT INTO tasks (user_id, title) VALUES ('u1', 'open transaction')")  # stays open
        started = time.monotonic()
        migrating = threading.Thread(target=migrate, daemon=True)
        migrating.start()
        migrating.join(timeout=30)
        assert not migrating.is_alive()
        assert time.monotonic() - started < 15
        assert failure and isinstance(failure[0], psycopg.errors.LockNotAvailable)
        # Writers were held at most that long, and go on now.
        with psycopg.connect(scratch_url, autocommit=True) as writer:
            writer.execute("SET lock_timeout = '2s'")
            writer.execute("INSERT INTO tasks (user_id, title) VALUES ('u2', 'after')")
        holder.commit()
    finally:
        holder.close()
    apply(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        assert columns(conn) >= NEW_COLUMNS
