"""The purge of what sync keeps for a while (idempotency keys; deletion tombstones; the rows of
event streams whose worker died; unused event tickets): nothing grows without bound. Each worker
runs it at start and then every `PURGE_INTERVAL_S`; several workers or instances purging at once
only share the work (each batch deletes rows the others no longer see).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.db import SqlFiles

logger = logging.getLogger("app.sync.purge")

PURGE_INTERVAL_S = 300.0
PURGE_BATCH = 5_000


class Purger:
    """Deletes expired rows in batches, in the background of each worker."""

    def __init__(
        self, pool: AsyncConnectionPool, sql: SqlFiles, *, idempotency_ttl_s: int, tombstone_ttl_s: int
    ) -> None:
        self.pool = pool
        self.jobs: list[tuple[bytes, dict[str, Any]]] = [
            (sql["idempotency/purge"], {"ttl_s": idempotency_ttl_s, "batch": PURGE_BATCH}),
            (sql["sync/purge_tombstones"], {"ttl_s": tombstone_ttl_s, "batch": PURGE_BATCH}),
            (sql["events/purge_streams"], {"batch": PURGE_BATCH}),
            (sql["events/purge_tickets"], {"batch": PURGE_BATCH}),
        ]

    async def purge_once(self) -> int:
        """Runs every purge until its batches come back short; returns the rows deleted."""
        deleted = 0
        for query, params in self.jobs:
            while True:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(query, params)
                deleted += cur.rowcount
                if cur.rowcount < PURGE_BATCH:
                    break
        return deleted

    async def _loop(self) -> None:
        while True:
            try:
                deleted = await self.purge_once()
                if deleted:
                    logger.info("purged %s expired sync rows", deleted)
            except (psycopg.Error, PoolTimeout) as exc:  # the database is away: try again next time
                logger.warning("purge skipped: %s", type(exc).__name__)
            # Jitter, so that workers started together do not purge in lockstep.
            await asyncio.sleep(PURGE_INTERVAL_S * random.uniform(0.8, 1.2))  # noqa: S311 (not security)

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop(), name="sync-purge")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
