"""UserRepository: accounts, the sign-in lockout counter and users rows, one SQL file per method."""

from __future__ import annotations

from typing import Any, NamedTuple

from psycopg_pool import AsyncConnectionPool

from app.auth.schemas import User
from app.auth.tokens import Caller
from app.db import SqlFiles


def email_key(email: str) -> str:
    """The form an email is unique and counted in: trimmed and lowercased here, not with SQL
    `lower()`, whose result depends on the database's locale."""
    return email.strip().lower()


class SignInAttempt(NamedTuple):
    """What one counted sign-in attempt found. Internal: `password_hash` never leaves the service."""

    retry_after_s: int | None  # set when the email is locked out
    user: User | None  # the account with that email, if any
    password_hash: str | None


class UserRepository:
    """Runs the `sql/users/` statements through the pool."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, *, max_failed_attempts: int, lockout_s: int) -> None:
        self.pool = pool
        self.max_failed_attempts = max_failed_attempts
        self.lockout_s = lockout_s
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
            {"email": email, "email_key": email_key(email), "name": name, "password_hash": password_hash},
        )
        return None if row is None else User(*row)

    async def record_sign_in_attempt(self, email: str) -> SignInAttempt:
        """Count an attempt for `email` (known or not) and fetch its account, in one statement."""
        row = await self._row(
            self._record_attempt,
            {
                "email_key": email_key(email),
                "max_failures": self.max_failed_attempts,
                "lockout_s": self.lockout_s,
            },
        )
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns its row
        retry_after_s, user_id, user_email, name, created_at, password_hash = row
        user = None if user_id is None else User(user_id, user_email, name, created_at)
        return SignInAttempt(retry_after_s, user, password_hash)

    async def clear_sign_in_failures(self, email: str) -> None:
        await self._execute(self._clear_failures, {"email_key": email_key(email)})

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
