"""Database access: the SQL file loader and the psycopg connection pool.

SQL lives in `sql/<feature>/<name>.sql`, one statement per file with `%(name)s` parameters. All files
are read once at start-up; asking for a file that does not exist fails then, not on a request.
"""

from __future__ import annotations

import logging
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg import AsyncConnection
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from psycopg_pool import AsyncConnectionPool

from app.config import Settings

logger = logging.getLogger("app.db")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


class SqlFiles:
    """Every `sql/**/*.sql` file, keyed by its path without suffix (`"tasks/create"`)."""

    def __init__(self, root: Path = SQL_DIR) -> None:
        self._queries: dict[str, bytes] = {
            path.relative_to(root).with_suffix("").as_posix(): path.read_bytes().strip()
            for path in sorted(root.rglob("*.sql"))
        }
        if not self._queries:
            raise RuntimeError(f"no SQL files found under {root}")

    def __getitem__(self, name: str) -> bytes:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"missing SQL file sql/{name}.sql") from None


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_int8 = struct.Struct("!q").unpack


class UtcTimestamptzLoader(Loader):
    """Loads `timestamptz` as an aware UTC datetime whatever the session's TimeZone is.

    psycopg's own loader converts to the connection's time zone, which we do not control behind a
    transaction-pooling PgBouncer; the contract wants `...Z` timestamps.
    """

    format = Format.BINARY

    def load(self, data: Buffer) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=_int8(data)[0])


async def _configure(conn: AsyncConnection) -> None:
    conn.adapters.register_loader("timestamptz", UtcTimestamptzLoader)


def create_pool(settings: Settings) -> AsyncConnectionPool:
    """The pool, not yet open: `open_pool` opens it in the app's lifespan."""
    assert settings.database_url is not None
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_pool_timeout_s,
        open=False,
        configure=_configure,
        # A connection killed by a database restart is noticed here and replaced, instead of
        # failing the request that would have used it.
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "prepare_threshold": settings.db_prepare_threshold,
            "connect_timeout": max(1, round(settings.db_pool_timeout_s)),
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            "application_name": "tasks-api",
        },
        name="tasks-api",
    )


async def open_pool(pool: AsyncConnectionPool) -> None:
    """Open without waiting for the database: the service starts (and /health answers) while it is down."""
    await pool.open(wait=False)
