"""In-process limits per key: a rate (the task write rate per user), cheap enough for the hot path,
and a concurrency cap (searches per user).

GCRA (the generic cell rate algorithm; the leaky bucket as a meter): one float per key, the time at
which the key's bucket would be empty again. A request is allowed while that time is at most one
window ahead of now, so a key may spend `per_minute` requests at once, then one per
60/`per_minute` seconds. Written by hand because the state is one float and the check a few
arithmetic operations; the rate-limit libraries keep lists of timestamps or a timer thread.

The state lives in the worker process: with WORKERS=n a user may make up to n times the rate
(documented). Keys whose bucket has drained are forgotten, so memory is bounded by the keys active
in the last minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import monotonic

from app.errors import RateLimited

# Forget drained keys when the table has grown this much since the last sweep.
_SWEEP_EVERY = 4096


class RateLimiter:
    """`per_minute` events per key per minute, with a burst of as many."""

    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / per_minute
        self.window = 60.0
        self._due: dict[str, float] = {}
        self._sweep_at = _SWEEP_EVERY

    def take(self, key: str) -> float | None:
        """Count one event for `key`: None when allowed, else the seconds to wait before the next."""
        now = monotonic()
        due = max(self._due.get(key, now), now) + self.interval
        wait = due - now - self.window
        if wait > 0:
            return wait
        self._due[key] = due
        if len(self._due) >= self._sweep_at:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        self._due = {key: due for key, due in self._due.items() if due > now}
        self._sweep_at = max(_SWEEP_EVERY, 2 * len(self._due))


class ConcurrencyLimit:
    """At most `per_key` operations at a time per key (beyond: refused at once, `RateLimited`), and
    at most `total` at a time in the process (beyond: they wait their turn).

    Used for searches: a search reads every row of the caller that holds q's trigrams, so a user
    who filled their own tasks with crafted text can make each search cost up to a few seconds of
    database CPU (bounded by the statement timeout). Without a cap, a few dozen such searches in
    parallel take every pooled connection and every database core, and everyone else's requests
    wait. With it, one user holds at most `per_key` connections (so, cores) for searches and all
    searches together at most `total`, so lists, reads and writes always find a connection.
    """

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self._running: dict[str, int] = {}
        self._total = asyncio.Semaphore(total)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        running = self._running.get(key, 0)
        if running >= self.per_key:
            raise RateLimited("Too many searches at once; retry when one has finished.", 1)
        self._running[key] = running + 1
        try:
            async with self._total:
                yield
        finally:
            left = self._running[key] - 1
            if left:
                self._running[key] = left
            else:
                del self._running[key]
