"""The changes feed: `GET /api/tasks/changes?since=<cursor>` (a snapshot first, then deltas).

Why it cannot skip or repeat a change although transactions commit out of order: every write
stamps the task (or its deletion's tombstone) with its own transaction id (`change_xid`), and the
feed works with PostgreSQL snapshots, not with numbers that grow. A catch-up returns the changes
whose transaction is not visible in the snapshot where the previous one ended (`from`) and is
visible in the snapshot where this one began (`to`), ordered by (change_xid, task id) so that it can
be paged. A transaction still running when `to` was taken is not visible in `to`: its changes come
with the next catch-up, which starts from `to`. A task changed again after `to` is left out of this
catch-up and comes, in its newest state, with the next one.

A cursor holds both snapshots, the position in the page order and when the catch-up began (the
database's clock). Deletions are remembered for SYNC_TOMBSTONE_TTL_S; a cursor older than that may
have missed one that is gone, so it is refused with 410 and the client starts over.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from app.auth.tokens import Caller
from app.db import SqlFiles, connection
from app.errors import ApiError
from app.tasks.schemas import TASK_COLUMNS, Task

MAX_ID = 2**63 - 1


class CursorExpired(ApiError):
    def __init__(self) -> None:
        super().__init__(410)


# pg_snapshot's text form, xmin:xmax:xip,...
_SNAPSHOT = re.compile(r"^(\d{1,20}):(\d{1,20}):(\d{1,20}(,\d{1,20})*)?$")
# A snapshot in which nothing is visible: where a snapshot (a catch-up from nothing) starts.
NOTHING = "1:1:"


def _xmax(snapshot: str) -> int:
    return int(snapshot.split(":", 2)[1])


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    """A place in the feed: changes invisible in `start` and visible in `end` (None: not yet
    taken) are being read, up to (xid, id); `began`: when this catch-up began (epoch seconds)."""

    start: str
    end: str | None
    xid: int
    id: int
    began: float

    def encode(self) -> str:
        return base64.urlsafe_b64encode(msgspec.json.encode(self)).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """A cursor from its opaque form; anything that is not one of ours is an unknown cursor (410)."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            cursor = msgspec.json.decode(raw, type=cls)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise CursorExpired() from None
        for snapshot in (cursor.start, cursor.end):
            if snapshot is not None and not _SNAPSHOT.match(snapshot):
                raise CursorExpired()
        if not (0 <= cursor.xid <= MAX_ID and 0 <= cursor.id <= MAX_ID):
            raise CursorExpired()
        return cursor


_START = Cursor(start=NOTHING, end=None, xid=0, id=0, began=0.0)


class Upsert(msgspec.Struct, frozen=True, tag_field="op", tag="upsert"):
    """The task was created or changed: this is its current state."""

    task: Task


class Deletion(msgspec.Struct, frozen=True, tag_field="op", tag="delete"):
    """The task was deleted."""

    id: int


Change = Upsert | Deletion


class ChangesMeta(msgspec.Struct, frozen=True):
    cursor: str
    has_more: bool


class ChangesEnvelope(msgspec.Struct, frozen=True):
    data: list[Change]
    meta: ChangesMeta


class ChangePage(msgspec.Struct, frozen=True):
    changes: list[tuple[Cursor, Change]]  # each change with the cursor just after it
    cursor: Cursor
    has_more: bool


class ChangeFeed:
    """Reads pages of one user's changes; `tombstone_ttl_s` is SYNC_TOMBSTONE_TTL_S."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, tombstone_ttl_s: int) -> None:
        self.pool = pool
        self.tombstone_ttl_s = tombstone_ttl_s
        self._changes = sql["sync/changes"]
        self._now = sql["sync/now"]

    async def now(self) -> Cursor:
        """A cursor at the present: the changes that commit from now on, without reading any task
        (where a live stream with nothing to resume starts)."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(self._now, binary=True)
            row = await cur.fetchone()
        assert row is not None
        return Cursor(row[0], None, 0, 0, row[1])

    async def page(self, caller: Caller, since: Cursor | None, limit: int) -> ChangePage:
        at = since or _START
        params: dict[str, Any] = {
            "user_id": caller.id,
            "from": at.start,
            "to": at.end,
            "xid": str(at.xid),
            "id": at.id,
            "deletions": since is not None,
            "limit": limit + 1,
        }
        async with connection(self.pool) as conn:
            cur = await conn.execute(self._changes, params, binary=True)
            rows = await cur.fetchall()
        current, now = rows[0][0], rows[0][1]
        if since is not None:
            ahead = max(_xmax(since.start), _xmax(since.end or since.start)) > _xmax(current)
            if ahead or now - since.began > self.tombstone_ttl_s:
                raise CursorExpired()
        began = now if since is None else since.began
        end = at.end or current
        changes: list[tuple[Cursor, Change]] = []
        for row in rows[:limit]:
            xid, deleted, task_id = row[2], row[3], row[4]
            if xid is None:  # an empty page: the snapshot row alone
                break
            change: Change = Deletion(task_id) if deleted else Upsert(Task(*row[4 : 4 + TASK_COLUMNS]))
            changes.append((Cursor(at.start, end, int(xid), task_id, began), change))
        has_more = len(rows) > limit
        # Caught up: the next catch-up starts where this one ended, and begins now.
        cursor = changes[-1][0] if has_more else Cursor(end, None, 0, 0, now)
        return ChangePage(changes, cursor, has_more)
