"""Password hashing with Argon2id (argon2-cffi), run off the event loop, with a bounded queue.

One hash costs about 0.1 s of CPU and 64 MiB of memory with argon2-cffi's defaults (RFC 9106's
low-memory profile: t=3, m=64 MiB, p=4). Doing that on the event loop would stall every other
request, so hashing and verifying run in worker threads (argon2-cffi releases the GIL), at most
`max_concurrent` at a time: more would not go faster on the same cores, only use more memory.

A flood of sign-ins would otherwise queue without bound (a real sign-in was measured waiting 16 s
behind one). So a request takes a place first (`reserve`): at most `max_concurrent` + `max_queue`
places exist, and when none is free the answer is 503 at once, before anything is counted or
written. The wait is then bounded by about (max_queue / max_concurrent + 1) hashes.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from app.errors import ServiceUnavailable

# NIST SP 800-63B 5.1.1.2: refuse passwords from lists of commonly used or compromised ones. The
# list is zxcvbn's (the 30,000 most frequent passwords of leaked sets, kept with the library);
# only those long enough to pass the length rule matter, compared case-insensitively.
COMMON_PASSWORDS = frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= 8)


def password_problem(password: str) -> str | None:
    """Why a new password is refused (beyond its length), or None."""
    if not password.strip():
        return "password must not be only whitespace"
    if password.lower() in COMMON_PASSWORDS:
        return "password is too common (it appears in lists of leaked passwords); choose another"
    return None


class Passwords:
    """Hashes new passwords and checks passwords against stored hashes.

    `hasher` is an internal hook (argon2-cffi's `PasswordHasher`, e.g. with cheaper parameters);
    the service always uses the defaults.
    """

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, max_concurrent: int | None = None, max_queue: int = 8
    ) -> None:
        self._hasher = hasher or argon2.PasswordHasher(type=argon2.Type.ID)
        concurrent = max_concurrent or os.cpu_count() or 2
        self._limiter = anyio.CapacityLimiter(concurrent)
        self._places = concurrent + max_queue
        self._taken = 0  # only touched on the event loop: no lock needed
        # Checked when there is no account to check against, so that an unknown email costs the
        # same work as a wrong password (no user enumeration by timing).
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    @asynccontextmanager
    async def reserve(self) -> AsyncIterator[None]:
        """A place for the hashing a request is about to do; 503 at once when there is none."""
        if self._taken >= self._places:
            raise ServiceUnavailable("Too many sign-ins at this moment; retry in a second.")
        self._taken += 1
        try:
            yield
        finally:
            self._taken -= 1

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches `password_hash`; `None` (no account) does the same work, False."""
        check = functools.partial(self._verify, password_hash or self._dummy_hash, password)
        matches = await anyio.to_thread.run_sync(check, limiter=self._limiter)
        return matches and password_hash is not None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)
