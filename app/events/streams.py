"""Live updates: each worker's open event streams, its one LISTEN connection, and what a stream sends.

How a change reaches a stream (README, "Live updates"):
- Every open stream has a row in `event_streams` (user, stream id, worker, expiry). A trigger on
  `tasks` and `task_tombstones` sends `NOTIFY task_changes, '<user id>'` at commit, but only when the
  user has such a row: a notifying commit takes a global lock, so users without a stream pay a
  lookup in a tiny table and no NOTIFY.
- Each worker holds one connection to DATABASE_LISTEN_URL (LISTEN needs a session: not through a
  transaction pooler), listening on `task_changes`; a notification sets the wake event of that
  user's streams in this worker. It only wakes: the data always comes from the changes feed
  (app/sync/changes.py), read with a pool connection held for that one query. So an event's `id`
  is the feed's cursor just after that change, and resuming (`Last-Event-ID`, `?since=`) is the
  feed's own exact resume. Idle, a stream holds no database connection.
- Bursts coalesce: many notifications for a user while a stream reads make one more read (paged
  while `has_more`), and reads of one stream are at least MIN_READ_INTERVAL_S apart.
- What a notification cannot cover is covered by reading anyway: a write whose statement began
  before the stream's row was committed does not notify, yet may commit after the stream's first
  read, so a stream reads again RECHECK_AFTER_S after it opens and at every heartbeat; when the
  listener loses its connection, every stream of the worker reads once it is back (nothing lost).
- The cap: a new stream counts the user's live rows and adds its own under a per-user advisory lock,
  so at most EVENTS_MAX_STREAMS_PER_USER are open across all workers and instances. Each worker
  renews its rows every heartbeat (one statement); a stream that ends deletes its row at once; the
  rows of a worker that died expire after EXPIRY_HEARTBEATS heartbeats and are purged.
- Shutdown: the protocol tells `shut_down` before uvicorn waits for responses (app/http/shutdown.py);
  every stream ends its response at once, and new ones end as soon as they start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import psycopg
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app import metrics
from app.auth.tokens import Caller
from app.config import Settings
from app.db import SqlFiles
from app.errors import RateLimited
from app.http.shutdown import on_server_shutdown
from app.sync.changes import ChangeFeed, ChangePage, Cursor, CursorExpired

logger = logging.getLogger("app.events")

# A stream reads the feed again this long after it opens (the registration race, see above).
RECHECK_AFTER_S = 0.75
# Reads of one stream are at least this far apart (a user writing fast wakes it often).
MIN_READ_INTERVAL_S = 0.05
# A stream's row expires this many heartbeats after its worker last renewed it.
EXPIRY_HEARTBEATS = 3
# What a client at the cap is told to wait: a closed stream's place is free at once, a dead
# worker's within EXPIRY_HEARTBEATS heartbeats.
CAP_RETRY_AFTER_S = 5
PAGE_SIZE = 500
# The listener's reconnection backoff.
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0

_encode = msgspec.json.Encoder().encode


class EventStream:
    """One open stream in this worker."""

    __slots__ = ("caller", "id", "wake")

    def __init__(self, caller: Caller) -> None:
        self.id = uuid.uuid4()
        self.caller = caller
        self.wake = asyncio.Event()


def change_events(page: ChangePage) -> bytes:
    """The page's changes as events: `id:` the cursor just after the change, `event: change`,
    `data:` the change as the feed gives it (JSON escapes newlines: one data line)."""
    last = len(page.changes) - 1
    parts = []
    for n, (cursor, change) in enumerate(page.changes):
        # After the last change of a caught-up page, the page's own cursor: the same place, ready to
        # continue from the next catch-up.
        at = page.cursor if n == last and not page.has_more else cursor
        parts.append(b"id: %s\nevent: change\ndata: %s\n\n" % (at.encode().encode(), _encode(change)))
    return b"".join(parts)


class StreamHub:
    """This worker's event streams (see the module's docstring)."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, feed: ChangeFeed, settings: Settings) -> None:
        assert settings.listen_url is not None
        self.pool = pool
        self.feed = feed
        self.listen_url = settings.listen_url
        self.heartbeat_s = settings.events_heartbeat_s
        self.max_per_user = settings.events_max_streams_per_user
        self.ttl_s = settings.events_heartbeat_s * EXPIRY_HEARTBEATS
        self.connect_timeout = max(1, round(settings.db_pool_timeout_s))
        # Prepared statements off is how the service is told it runs behind a transaction pooler,
        # through which LISTEN receives nothing (streams would still get changes, at heartbeats).
        self.listen_through_pooler = settings.db_prepare_threshold is None and settings.database_listen_url is None
        # Which worker holds a stream (event_streams.worker, and the listener's application_name).
        self.worker = f"{socket.gethostname()[:32]}/{os.getpid()}/{secrets.token_hex(4)}"
        self.closing = False
        self.listening = False
        self._streams: dict[uuid.UUID, EventStream] = {}
        self._by_user: dict[str, set[EventStream]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock_user = sql["events/lock_user"]
        self._open = sql["events/open_stream"]
        self._close = sql["events/close_stream"]
        self._renew = sql["events/renew_streams"]
        self._listen_sql = sql["events/listen"]
        self._ping = sql["db/ping"]

    # --- opening and closing -------------------------------------------------------------------
    async def open(self, caller: Caller) -> EventStream:
        """Register a stream for `caller`, or raise RateLimited at the cap (429)."""
        stream = EventStream(caller)
        params = {
            "user_id": caller.id,
            "stream_id": stream.id,
            "worker": self.worker,
            "ttl_s": self.ttl_s,
            "max_streams": self.max_per_user,
        }
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(self._lock_user, params)
            cur = await conn.execute(self._open, params)
            opened = await cur.fetchone()
        if opened is None:
            raise RateLimited(
                f"At most {self.max_per_user} open event streams per user; close one first.",
                CAP_RETRY_AFTER_S,
                limit="event_streams",
            )
        self._streams[stream.id] = stream
        self._by_user.setdefault(caller.id, set()).add(stream)
        return stream

    def close(self, stream: EventStream) -> None:
        """The stream ended (any way, any number of times): forget it, free its place in the background."""
        if self._streams.pop(stream.id, None) is None:
            return
        users = self._by_user.get(stream.caller.id)
        if users is not None:
            users.discard(stream)
            if not users:
                del self._by_user[stream.caller.id]
        self._spawn(self._delete(stream), "event-stream-close")

    async def release(self, stream: EventStream) -> None:
        """`close`, as the response's background task (Litestar runs a sync one in a thread)."""
        self.close(stream)

    async def _delete(self, stream: EventStream) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute(self._close, {"user_id": stream.caller.id, "stream_id": stream.id})
        except (psycopg.Error, PoolTimeout) as exc:  # its row expires instead
            logger.warning("event stream row not deleted: %s", type(exc).__name__)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- waking ----------------------------------------------------------------------------------
    def notified(self, user_id: str) -> None:
        for stream in self._by_user.get(user_id, ()):
            stream.wake.set()

    def wake_all(self) -> None:
        for stream in self._streams.values():
            stream.wake.set()

    def shut_down(self) -> None:
        """The server is shutting down: every stream ends now (new ones at once)."""
        if not self.closing:
            self.closing = True
            self.wake_all()

    # --- one stream --------------------------------------------------------------------------------
    async def first_page(self, stream: EventStream, since: Cursor | None) -> tuple[Cursor, bytes]:
        """Where the stream starts, before its response does (so that 410 is still an answer): the
        changes after `since`, or nothing but the present when there is no `since`."""
        if since is None:
            return await self.feed.now(), b""
        return await self._read(stream, since)

    async def _read(self, stream: EventStream, cursor: Cursor) -> tuple[Cursor, bytes]:
        chunks = []
        while True:
            page = await self.feed.page(stream.caller, cursor, PAGE_SIZE)
            chunks.append(change_events(page))
            cursor = page.cursor
            if not page.has_more:
                return cursor, b"".join(chunks)

    async def events(self, stream: EventStream, cursor: Cursor, first: bytes) -> AsyncIterator[bytes]:
        """The stream's body: where it starts (an `id:` with no event: a reconnecting EventSource
        resumes from there), then events as they come and a comment every heartbeat."""
        with metrics.open_stream():
            try:
                yield b": connected\nid: %s\n\n%s" % (cursor.encode().encode(), first)
                loop = asyncio.get_running_loop()
                now = loop.time()
                recheck_at: float | None = now + RECHECK_AFTER_S
                beat_at = now + self.heartbeat_s
                read_at = now
                while not self.closing:
                    due = beat_at if recheck_at is None else min(recheck_at, beat_at)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(due):
                            await stream.wake.wait()
                    if self.closing:
                        break
                    now = loop.time()
                    chunk = b""
                    if now >= beat_at:
                        chunk = b": heartbeat\n\n"
                        beat_at = now + self.heartbeat_s
                    if recheck_at is not None and now >= recheck_at:
                        recheck_at = None
                    if not chunk and now < read_at + MIN_READ_INTERVAL_S:  # woken again right after a read
                        await asyncio.sleep(read_at + MIN_READ_INTERVAL_S - now)
                    stream.wake.clear()
                    read_at = loop.time()
                    try:
                        cursor, events = await self._read(stream, cursor)
                    except (psycopg.Error, PoolTimeout) as exc:
                        # The database is away: the cursor stays, the next heartbeat reads again.
                        logger.warning("event stream read failed: %s", type(exc).__name__)
                        events = b""
                    except CursorExpired:  # (a stream open longer than SYNC_TOMBSTONE_TTL_S)
                        break
                    if chunk or events:
                        yield chunk + events
            finally:
                self.close(stream)

    # --- the worker's background work --------------------------------------------------------------
    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect with backoff. Each (re)connection wakes every stream."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.listen_url,
                    autocommit=True,
                    connect_timeout=self.connect_timeout,
                    application_name=f"tasks-api-listener {self.worker}"[:63],
                )
                async with conn:
                    await conn.execute(self._listen_sql)
                    self.listening = True
                    delay = RECONNECT_MIN_S
                    # Whatever was notified while nobody listened: every stream reads.
                    self.wake_all()
                    while True:
                        async for notify in conn.notifies(timeout=self.heartbeat_s):
                            self.notified(notify.payload)
                        # Quiet for a heartbeat: make sure the connection is still alive.
                        await conn.execute(self._ping)
            except (psycopg.Error, OSError) as exc:
                if self.listening:
                    logger.warning("events listener lost its connection: %s; reconnecting", type(exc).__name__)
                self.listening = False
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 (not security)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _renew_loop(self) -> None:
        """Every heartbeat, one statement renews the expiry of all of this worker's streams."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if not self._streams:
                continue
            streams = list(self._streams.values())
            params = {
                "worker": self.worker,
                "ttl_s": self.ttl_s,
                "stream_ids": [s.id for s in streams],
                "user_ids": [s.caller.id for s in streams],
            }
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(self._renew, params)
            except (psycopg.Error, PoolTimeout) as exc:
                logger.warning("event streams not renewed: %s", type(exc).__name__)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        undo = on_server_shutdown(self.shut_down)
        if self.listen_through_pooler:
            logger.warning(
                "DB_PREPARE_THRESHOLD is empty (a transaction pooler?) and DATABASE_LISTEN_URL is not set: "
                "LISTEN through a pooler receives nothing, so live updates would come only every "
                "EVENTS_HEARTBEAT_S. Set DATABASE_LISTEN_URL to a direct connection string."
            )
        self._spawn(self._listen(), "events-listener")
        self._spawn(self._renew_loop(), "events-renew")
        background = set(self._tasks)
        try:
            yield
        finally:
            undo()
            self.shut_down()
            for task in background:
                task.cancel()
            # Rows of streams still closing are deleted; a stuck database does not hold shutdown.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(2):
                    await asyncio.gather(*self._tasks, return_exceptions=True)
