"""The pool's cheap connection check still replaces every connection a database restart killed.

These tests restart and crash a PostgreSQL of their own (never the shared test server).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from app import db
from app.config import Settings
from app.db import SqlFiles, create_pool, open_pool
from app.embedded_pg import EmbeddedPostgres

POOL_SIZE = 4


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg-restart") / "data") as server:
        yield server


def settings(url: str) -> Settings:
    return Settings.from_mapping(
        {
            "DATABASE_URL": url,
            "DB_POOL_MIN_SIZE": str(POOL_SIZE),
            "DB_POOL_MAX_SIZE": str(POOL_SIZE),
            "DB_POOL_TIMEOUT_S": "10",
        }
    )


async def full_pool(url: str) -> AsyncConnectionPool:
    pool = create_pool(settings(url), SqlFiles())
    await open_pool(pool)
    await pool.wait(timeout=10)
    await use_every_connection(pool)
    return pool


async def use_every_connection(pool: AsyncConnectionPool) -> list[Any]:
    """POOL_SIZE concurrent queries: each takes a different connection."""

    async def one() -> Any:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid(), pg_sleep(0.05)")
            row = await cur.fetchone()
            assert row is not None
            return row[0]

    return list(await asyncio.gather(*(one() for _ in range(POOL_SIZE))))


def terminate(url: str, pids: set[int]) -> None:
    """pg_terminate_backend, and wait until the backends are gone (it only signals them)."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(pids)])
        query = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
        while admin.execute(query, [list(pids)]).fetchone() != (0,):
            time.sleep(0.01)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["restart", "crash", "terminate"])
async def test_no_query_fails_after_the_server_dropped_every_connection(own_server: EmbeddedPostgres, how: str) -> None:
    pool = await full_pool(own_server.url)
    try:
        before = set(await use_every_connection(pool))
        if how == "restart":
            await asyncio.to_thread(own_server.restart)
        elif how == "crash":
            await asyncio.to_thread(own_server.kill)
            await asyncio.to_thread(own_server.start)
        else:
            await asyncio.to_thread(terminate, own_server.url, before)
        # Every pooled connection is now dead; not one query may fail because of it.
        after = set()
        for _ in range(3):
            after |= set(await use_every_connection(pool))
        assert not after & before
    finally:
        await pool.close()


@pytest.mark.asyncio
async def test_a_busy_connection_is_not_pinged(own_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = await full_pool(own_server.url)
    pings: list[object] = []
    real = AsyncConnectionPool.check_connection

    async def counting(conn: Any) -> None:
        pings.append(conn)
        await real(conn)

    monkeypatch.setattr(db.AsyncConnectionPool, "check_connection", staticmethod(counting))
    try:
        for _ in range(20):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        assert pings == []
        # Idle for longer than the bypass window: the round trip comes back.
        monkeypatch.setattr(db, "IDLE_CHECK_AFTER_S", 0.0)
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        assert len(pings) == 1
    finally:
        await pool.close()
