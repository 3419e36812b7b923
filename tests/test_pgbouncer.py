"""What is particular to PgBouncer in transaction pooling mode (the shape of Neon's pooled endpoint).

The task API itself runs through it in `test_tasks_end_to_end.py`; here: proof that the pooling
really is per transaction, why the statement timeout cannot travel as a startup parameter there,
and that it applies all the same when set on the database (or role), as the README tells.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import LiveServer, User, scratch_database
from harness import PgBouncer, recording, wait_until
from psycopg import sql

from app.config import Settings


def test_pooling_is_per_transaction(server_url: str, tmp_path: Path, pgbouncer: PgBouncer) -> None:
    """Two clients connected at once share PgBouncer's one server connection, one statement at a
    time: that only happens in transaction (or statement) pooling."""
    with PgBouncer(server_url, tmp_path / "one", pool_size=1) as single:
        url = single.url_for(server_url)
        with (
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as first,
            psycopg.connect(url, autocommit=True, prepare_threshold=None) as second,
        ):
            pids = {conn.execute("SELECT pg_backend_pid()").fetchone() for conn in (first, second, first)}
    assert len(pids) == 1


def test_the_pooler_refuses_startup_options(pgbouncer: PgBouncer, database_url: str) -> None:
    """Why `options=-c statement_timeout=...` is only sent when prepared statements are on."""
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(pgbouncer.url_for(database_url), options="-c statement_timeout=1000", connect_timeout=5).close()


@pytest.fixture(scope="module")
def timeout_db(server_url: str) -> Iterator[str]:
    """A database of its own whose statement_timeout (500 ms) is set on the database, as on Neon."""
    with scratch_database(server_url, "tasks_pooled", migrate=True) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            name = sql.Identifier(conn.info.dbname)
            conn.execute(sql.SQL("ALTER DATABASE {} SET statement_timeout = 500").format(name))
        yield url


def test_the_database_statement_timeout_applies_through_pgbouncer(
    pgbouncer: PgBouncer,
    timeout_db: str,
    pooled_settings: Settings,
    serve: Callable[[Settings], LiveServer],
) -> None:
    settings = pooled_settings.with_(database_url=pgbouncer.url_for(timeout_db), db_statement_timeout_ms=500)
    with recording("app") as logs:
        server = serve(settings)
        user = User()
        with httpx.Client(base_url=server.url, timeout=30, headers=user.headers) as http:
            created = http.post("/api/tasks", json={"title": "locked"})
            assert created.status_code == 201
            task_id = created.json()["data"]["id"]
            with psycopg.connect(timeout_db) as holder:
                holder.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
                started = time.monotonic()
                assert_error(http.patch(f"/api/tasks/{task_id}/complete"), 503)
                assert 0.5 <= time.monotonic() - started < 2.5
                holder.commit()
            for _ in range(5):  # the pool (and PgBouncer's server connections) are fine afterwards
                assert http.patch(f"/api/tasks/{task_id}/complete").status_code == 200
    assert "statement_timeout" not in logs.text()  # it matched: nothing to warn about


def test_a_statement_timeout_that_differs_from_the_setting_is_reported(
    pgbouncer: PgBouncer,
    timeout_db: str,
    pooled_settings: Settings,
    serve: Callable[[Settings], LiveServer],
) -> None:
    settings = pooled_settings.with_(database_url=pgbouncer.url_for(timeout_db), db_statement_timeout_ms=5000)
    with recording("app.db") as logs:
        server = serve(settings)
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        wait_until(lambda: "statement_timeout is 500 ms" in logs.text(), timeout=10, what="the warning")
    warnings = [r for r in logs.records if "statement_timeout" in r.getMessage()]
    assert len(warnings) == 1  # once, not once per connection
    assert "ALTER ROLE" in warnings[0].getMessage()
