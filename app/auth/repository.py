"""UserRepository: accounts, the sign-in counters and users rows, one SQL file per method."""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Any, NamedTuple

from psycopg_pool import AsyncConnectionPool

from app.auth.schemas import User
from app.auth.tokens import Caller
from app.db import SqlFiles


def normalize_email(email: str) -> str:
    """Trimmed and NFC-normalized, so that one address typed in two Unicode forms is one address."""
    return unicodedata.normalize("NFC", email.strip())


def email_key(email: str) -> str:
    """The form an email is unique and counted in: normalized and lowercased here, not with SQL
    `lower()`, whose result depends on the database's locale."""
    return normalize_email(email).lower()


def client_key(host: str | None) -> str:
    """The client address that per-address limits count: an IPv4 address as is, an IPv6 one as its
    /64 network (what one subscriber typically holds, so that rotating addresses inside it does not
    escape the limits)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP address (a Unix socket path, a test client): counted as is
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SignInAttempt(NamedTuple):
    """What one counted sign-in attempt found. Internal: `password_hash` never leaves the service."""

    retry_after_s: int | None  # set when the email is locked out
    user: User | None  # the account with that email, if any
    password_hash: str | None


class UserRepository:
    """Runs the `sql/users/` statements through the pool."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        sql: SqlFiles,
        *,
        max_failed_attempts: int,
        max_failed_per_email: int,
        lockout_s: int,
        rate_per_min: int,
    ) -> None:
        self.pool = pool
        self.max_failed_attempts = max_failed_attempts
        self.max_failed_per_email = max_failed_per_email
        self.lockout_s = lockout_s
        self.rate_per_min = rate_per_min
        self._count_client_attempt = sql["users/count_client_attempt"]
        self._create_account = sql["users/create_account"]
        self._record_attempt = sql["users/record_sign_in_attempt"]
        self._clear_failures = sql["users/clear_sign_in_failures"]
        self._update_password_hash = sql["users/update_password_hash"]
        self._ensure = sql["users/ensure"]

    async def _row(self, query: bytes, params: dict[str, Any]) -> tuple[Any, ...] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params, binary=True)
            return await cur.fetchone()

    async def _execute(self, query: bytes, params: dict[str, Any]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(query, params, binary=True)

    async def create_account(self, *, email: str, name: str, password_hash: str) -> User | None:
        """The new account, or None when the email (case-insensitively) already has one."""
        row = await self._row(
            self._create_account,
            {
                "email": normalize_email(email),
                "email_key": email_key(email),
                "name": name,
                "password_hash": password_hash,
            },
        )
        return None if row is None else User(*row)

    async def count_client_attempt(self, client: str) -> int | None:
        """Count a sign-up or sign-in attempt from `client`: None, or seconds to wait when over the rate."""
        row = await self._row(self._count_client_attempt, {"client": client, "max_attempts": self.rate_per_min})
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns its row
        return row[0]  # type: ignore[no-any-return]

    async def record_sign_in_attempt(self, email: str, client: str) -> SignInAttempt:
        """Count an attempt for `email` (known or not) from `client` and fetch its account, in one statement."""
        row = await self._row(
            self._record_attempt,
            {
                "email_key": email_key(email),
                "client": client,
                "max_failures": self.max_failed_attempts,
                "max_per_email": self.max_failed_per_email,
                "lockout_s": self.lockout_s,
            },
        )
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns its row
        retry_after_s, user_id, user_email, name, created_at, password_hash = row
        user = None if user_id is None else User(user_id, user_email, name, created_at)
        return SignInAttempt(retry_after_s, user, password_hash)

    async def clear_sign_in_failures(self, email: str, client: str) -> None:
        await self._execute(self._clear_failures, {"email_key": email_key(email), "client": client})

    async def update_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._execute(self._update_password_hash, {"id": user_id, "password_hash": password_hash})

    async def ensure(self, caller: Caller) -> User:
        """The caller's row, created from the token's claims when it does not exist yet."""
        params = {"id": caller.id, "email": caller.email, "name": caller.name}
        # A second run only happens when a concurrent request inserted the row in between.
        for _ in range(2):
            row = await self._row(self._ensure, params)
            if row is not None:
                return User(*row)
        raise RuntimeError(f"users row for {caller.id!r} neither inserted nor found")
