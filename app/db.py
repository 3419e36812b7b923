"""Database access: the SQL file loader and the psycopg connection pool.

SQL lives in `sql/<feature>/<name>.sql`, one statement per file with `%(name)s` parameters. All files
are read once at start-up; asking for a file that does not exist fails then, not on a request.
"""

from __future__ import annotations

import asyncio
import logging
import select
import struct
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import monotonic
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection, OperationalError
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format
from psycopg_pool import AsyncConnectionPool

from app.config import Settings

logger = logging.getLogger("app.db")

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def statement(text: bytes) -> bytes:
    """A file's statement as sent: without its whole-line `--` comments and blank lines.

    psycopg turns `%(name)s` into `$n` with a regular expression on every execute, and caches the
    result only for statements of at most 4,096 bytes (`psycopg._queries.MAX_CACHED_STATEMENT_LENGTH`).
    With its comments, `tasks/update.sql` was 4,592 bytes: parsed again on every PUT, a third of the
    worker's CPU under load (py-spy). The comments stay in the files, for their readers;
    `tests/test_sql_files.py` keeps every statement under the limit.
    """
    lines = (line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(b"--"))
    return b"\n".join(lines).strip()


class SqlFiles:
    """Every `sql/**/*.sql` file, keyed by its path without suffix (`"tasks/create"`)."""

    def __init__(self, root: Path = SQL_DIR) -> None:
        self._queries: dict[str, bytes] = {
            path.relative_to(root).with_suffix("").as_posix(): statement(path.read_bytes())
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
        return _PG_EPOCH + timedelta(0, 0, _int8(data)[0])  # positional: faster than microseconds=


# psycopg's pool retries a lost connection with exponential backoff for up to 5 minutes, so after
# a long outage the next attempt may come a minute after the database is back. Giving up a
# reconnection after a few seconds makes the next request start a fresh one instead: recovery
# takes seconds, whatever the outage lasted.
RECONNECT_GIVE_UP_S = 5.0


# A connection handed out again within this many seconds is trusted without a round trip (the
# idea of HikariCP's `aliveBypassWindowMs`), unless its socket says the server has hung up.
IDLE_CHECK_AFTER_S = 1.0


# When each pooled connection was last handed out (weak keys: closed connections drop out).
_last_checkout: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()


def _has_input(fd: int) -> bool:
    """Whether the socket has something to read (or hung up): never the case for a healthy idle one."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


async def check_connection(conn: AsyncConnection[Any]) -> None:
    """The pool's check on every checkout: replace connections a database restart killed.

    psycopg_pool's own `check_connection` costs a round trip per checkout (measured: a fifth of a
    list request's time here). This one asks the kernel instead. A connection that sits idle in the
    pool is not reading anything, so when the server closes it (shutdown, restart, crash,
    `pg_terminate_backend`, an idle timeout) the FATAL message or the EOF is waiting on its socket: a
    zero-timeout poll sees it, and the full round-trip check then decides (and fails it, so the pool
    throws it away and hands out another). A connection idle for more than `IDLE_CHECK_AFTER_S` gets
    the round trip anyway, for what a socket cannot show (a peer that vanished without a word). What
    no check can catch, this one included, is a server dying between the check and the query.
    """
    now = monotonic()
    idle_for = now - _last_checkout.get(conn, 0.0)
    _last_checkout[conn] = now
    if conn.closed or conn.broken:
        raise OperationalError("the connection is closed")
    if idle_for > IDLE_CHECK_AFTER_S or _has_input(conn.pgconn.socket):
        await AsyncConnectionPool.check_connection(conn)


def _configure_for(
    settings: Settings, sql: SqlFiles, on_connect: Callable[[AsyncConnection], None] | None
) -> Callable[[AsyncConnection], Awaitable[None]]:
    """Set up each new connection, and check once that its statement_timeout is the configured one."""
    query = sql["db/statement_timeout"]
    wanted = settings.db_statement_timeout_ms
    warned = False

    async def configure(conn: AsyncConnection) -> None:
        nonlocal warned
        conn.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
        if on_connect is not None:
            on_connect(conn)
        if warned:
            return
        cur = await conn.execute(query)
        row = await cur.fetchone()
        if row is not None and row[0] != wanted and not warned:  # connections open concurrently
            warned = True
            logger.warning(
                "statement_timeout is %s ms on the database, not DB_STATEMENT_TIMEOUT_MS=%s: "
                "behind a pooler (DB_PREPARE_THRESHOLD empty) set it on the role, e.g. "
                "ALTER ROLE <role> SET statement_timeout = %s",
                row[0],
                wanted,
                wanted,
            )

    return configure


def create_pool(
    settings: Settings, sql: SqlFiles, on_connect: Callable[[AsyncConnection], None] | None = None
) -> AsyncConnectionPool:
    """The pool, not yet open: `open_pool` opens it in the app's lifespan. `on_connect` sees each new
    connection (tracing instruments it).

    statement_timeout: on a direct connection (prepared statements on) it is a startup parameter,
    applied by the server at no cost. Behind a transaction-pooling PgBouncer such as Neon's pooled
    endpoint (DB_PREPARE_THRESHOLD empty) that parameter is refused ("unsupported startup
    parameter", every connection fails) or, if the pooler is told to ignore it, silently dropped;
    there the timeout must come from the role or database setting that every server connection
    applies (`ALTER ROLE ... SET statement_timeout`). Each new connection checks what it got.
    """
    assert settings.database_url is not None
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": settings.db_prepare_threshold,
        "connect_timeout": max(1, round(settings.db_pool_timeout_s)),
        "application_name": "tasks-api",
    }
    if settings.db_prepare_threshold is not None:
        kwargs["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_pool_timeout_s,
        reconnect_timeout=RECONNECT_GIVE_UP_S,
        open=False,
        configure=_configure_for(settings, sql, on_connect),
        # A connection killed by a database restart is noticed here and replaced, instead of
        # failing the request that would have used it.
        check=check_connection,
        kwargs=kwargs,
        name="tasks-api",
    )


async def open_pool(pool: AsyncConnectionPool) -> None:
    """Open without waiting for the database: the service starts (and /health answers) while it is down."""
    await pool.open(wait=False)


# A connection a request has already taken, in a transaction (an idempotent write runs its
# statements and the storing of its answer in one): statements reuse it instead of the pool.
request_transaction: ContextVar[AsyncConnection[Any] | None] = ContextVar("request_transaction", default=None)


class connection:  # lower case: used like a function, `async with connection(pool) as conn`
    """The request's transaction connection when there is one, else one from the pool.

    A class, not an `@asynccontextmanager`: a generator-based wrapper around the pool's own context
    manager measured at about a tenth of a simple request's CPU time.
    """

    __slots__ = ("_checkout", "_pool")

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._checkout: AbstractAsyncContextManager[AsyncConnection[Any]] | None = None

    async def __aenter__(self) -> AsyncConnection[Any]:
        conn = request_transaction.get()
        if conn is not None:
            return conn
        self._checkout = self._pool.connection()
        return await self._checkout.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        if self._checkout is not None:
            await self._checkout.__aexit__(*exc)


class DatabaseProbe:
    """Readiness: whether the database answers (`sql/db/ping.sql`) through the pool within `timeout_s`."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, timeout_s: float) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self._ping = sql["db/ping"]

    async def ping(self) -> None:
        """Returns when the database answered; raises (timeout, pool or driver error) otherwise."""
        async with asyncio.timeout(self.timeout_s), self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.execute(self._ping)
