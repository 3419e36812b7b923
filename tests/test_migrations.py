"""yoyo migrations: every migration applies and rolls back cleanly, and applies again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import ROOT, scratch_database

from app.migrate import MIGRATIONS_DIR, apply, rollback


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "migrations", migrate=False) as url:
        yield url


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows: list[Any] = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_yoyo%%'"
            " AND tablename <> 'yoyo_lock'"
        ).fetchall()
    return {r[0] for r in rows}


def test_every_migration_has_a_rollback() -> None:
    forward = [p for p in MIGRATIONS_DIR.glob("*.sql") if not p.name.endswith(".rollback.sql")]
    assert forward
    for path in forward:
        assert path.with_name(path.stem + ".rollback.sql").is_file(), path.name


def test_apply_rollback_apply(scratch_url: str) -> None:
    count = len([p for p in MIGRATIONS_DIR.glob("*.sql") if not p.name.endswith(".rollback.sql")])
    assert len(apply(scratch_url)) == count
    assert {"users", "tasks"} <= tables(scratch_url)
    assert apply(scratch_url) == []  # idempotent
    rolled = rollback(scratch_url, steps=count)
    assert len(rolled) == count
    assert not ({"users", "tasks"} & tables(scratch_url))
    assert len(apply(scratch_url)) == count
    assert {"users", "tasks"} <= tables(scratch_url)


def test_just_migrate_and_rollback_commands(scratch_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": scratch_url, "PYTHONPATH": str(ROOT)}
    for command in (["apply"], ["rollback", "--steps", "99"], ["apply"]):
        result = subprocess.run(
            [sys.executable, "-m", "app.migrate", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
    assert {"users", "tasks"} <= tables(scratch_url)


def test_list_query_uses_the_per_user_index(scratch_url: str) -> None:
    apply(scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) SELECT 'u' || g FROM generate_series(1, 200) g")
        conn.execute(
            "INSERT INTO tasks (user_id, title) SELECT 'u' || (g % 200 + 1), 't' || g FROM generate_series(1, 20000) g"
        )
        conn.execute("ANALYZE tasks")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM tasks WHERE user_id = 'u7' ORDER BY created_at DESC, id DESC LIMIT 20"
            ).fetchall()
        )
    assert "Index" in plan and "Seq Scan" not in plan
