"""Password hashing with Argon2id (argon2-cffi), run off the event loop.

One hash costs about 0.1 s of CPU and 64 MiB of memory with argon2-cffi's defaults (RFC 9106's
low-memory profile: t=3, m=64 MiB, p=4). Doing that on the event loop would stall every other
request, so hashing and verifying run in worker threads (argon2-cffi releases the GIL), at most
`max_concurrent` at a time: more would not go faster on the same cores, only use more memory.
"""

from __future__ import annotations

import functools
import os
import secrets

import anyio
import anyio.to_thread
import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    """Hashes new passwords and checks passwords against stored hashes.

    `hasher` is an internal hook (argon2-cffi's `PasswordHasher`, e.g. with cheaper parameters);
    the service always uses the defaults.
    """

    def __init__(self, hasher: argon2.PasswordHasher | None = None, max_concurrent: int | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher(type=argon2.Type.ID)
        self._limiter = anyio.CapacityLimiter(max_concurrent or os.cpu_count() or 2)
        # Checked when there is no account to check against, so that an unknown email costs the
        # same work as a wrong password (no user enumeration by timing).
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

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
