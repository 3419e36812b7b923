"""Tickets for `GET /api/events?ticket=`: the browser's `EventSource` cannot send an Authorization
header, so a client with a bearer token asks `POST /api/events/ticket` for a ticket and puts it in
the stream's URL. A ticket is a random 256-bit token, good for one use within TICKET_TTL_S, for the
caller who asked. Only its SHA-256 is stored (in PostgreSQL: any worker or instance may get the
stream request), so the table leaks nothing usable; using one deletes it in the same statement, so
it works once even when two requests race. Expired ones are purged (app/sync/purge.py).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.auth.tokens import Caller
from app.db import SqlFiles, connection

TICKET_TTL_S = 60
# secrets.token_urlsafe(32) is 43 characters; anything much longer is not one of ours.
MAX_TICKET_CHARS = 128


def _hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


class Tickets:
    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles) -> None:
        self.pool = pool
        self._create = sql["events/create_ticket"]
        self._use = sql["events/use_ticket"]

    def __deepcopy__(self, memo: dict[int, Any]) -> Tickets:
        # Litestar deep-copies a Router when it is registered, middleware kwargs included: the
        # middleware must use this very object (its pool is the one the app opens).
        return self

    async def issue(self, caller: Caller) -> str:
        ticket = secrets.token_urlsafe(32)
        params = {
            "hash": _hash(ticket),
            "user_id": caller.id,
            "email": caller.email,
            "name": caller.name,
            "ttl_s": TICKET_TTL_S,
        }
        async with connection(self.pool) as conn:
            await conn.execute(self._create, params)
        return ticket

    async def use(self, ticket: str) -> Caller | None:
        """The caller the ticket stands for, once; None when it is unknown, used or expired."""
        if not ticket or len(ticket) > MAX_TICKET_CHARS:
            return None
        async with connection(self.pool) as conn:
            cur = await conn.execute(self._use, {"hash": _hash(ticket)})
            row = await cur.fetchone()
        return None if row is None else Caller(id=row[0], email=row[1], name=row[2])
