"""`Idempotency-Key` on task writes: the first request runs, later ones get its stored answer.

How one keyed write runs, in one transaction on one connection, pipelined (psycopg's pipeline mode
sends statements without waiting for each answer):
1. round trip: BEGIN, forget this key if it has expired, take the key's advisory lock, the write;
2. round trip: store the answer under (user, key), COMMIT.
So a keyed write costs one round trip more than an unkeyed one, and an unkeyed write nothing.
- The advisory lock (held until commit) tells a duplicate that arrives while the first is still
  running: 409 `IDEMPOTENCY_KEY_IN_USE`; the failed lock aborts the pipeline, so its write never runs.
- A duplicate that arrives after the first committed runs its write, then its INSERT of the key hits
  the stored one (unique violation): the transaction rolls back, so nothing it did remains (a
  retried toggle does not toggle twice), and it answers the stored status and body with
  `Idempotent-Replayed: true`, or 422 `IDEMPOTENCY_KEY_REUSED` when the request differs.
Answers below 500 are stored (a 404 or a 412 replays as such); a 5xx is not, so a retry runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response
from psycopg_pool import AsyncConnectionPool

from app.body import request_body
from app.db import SqlFiles, request_transaction
from app.errors import ApiError, error_body
from app.responses import RawResponse, encode_json

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # 1-255 visible ASCII characters
_REPLAYED = (b"idempotent-replayed", b"true")
_encode_headers = msgspec.json.Encoder().encode
_decode_headers = msgspec.json.Decoder(list[tuple[str, str]]).decode


class KeyInUse(ApiError):
    def __init__(self) -> None:
        super().__init__(
            409,
            "A request with this Idempotency-Key is still running; retry shortly.",
            code="IDEMPOTENCY_KEY_IN_USE",
            headers={"Retry-After": "1"},
        )


class KeyReused(ApiError):
    def __init__(self) -> None:
        super().__init__(422, "This Idempotency-Key was used for a different request.", code="IDEMPOTENCY_KEY_REUSED")


class _Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def response(self, *, replayed: bool) -> Response[Any]:
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers]
        return RawResponse(self.status, self.body, [*raw, _REPLAYED] if replayed else raw)


def _answer_of(response: Response[Any]) -> _Answer:
    body = b"" if response.content is None else encode_json(response.content)
    headers = [(name, str(value)) for name, value in response.headers.items()]
    return _Answer(response.status_code or 200, body, headers)


def _error_answer(exc: ApiError) -> _Answer:
    return _Answer(
        exc.status, error_body(exc.status, exc.message, exc.details, exc.code), list((exc.headers or {}).items())
    )


class Idempotency:
    """Runs keyed writes as described above; `ttl_s` is IDEMPOTENCY_TTL_S."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, ttl_s: int) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self._forget_expired = sql["idempotency/forget_expired"]
        self._try_lock = sql["idempotency/try_lock"]
        self._store = sql["idempotency/store"]
        self._stored = sql["idempotency/stored"]

    async def run(
        self, request: Request[Any, Any, Any], key: str, write: Callable[[], Awaitable[Response[Any]]]
    ) -> Response[Any]:
        body = await request_body(request)
        fingerprint = hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), request.scope["path"].encode(), body))
        params: dict[str, Any] = {"user_id": request.user.id, "key": key, "ttl_s": self.ttl_s}
        for attempt in range(2):
            try:
                answer = await self._first(params, fingerprint.digest(), write)
            except KeyInUse:
                raise
            except (ApiError, psycopg.Error) as exc:
                # The write failed and was rolled back. A unique violation means the key was stored by
                # a request that committed first; any other failure may also hide an earlier success
                # (a retried create refused by a limit the first one reached): the stored answer wins.
                stored = await self._lookup(params)
                if stored is None:
                    if isinstance(exc, psycopg.errors.UniqueViolation) and attempt == 0:
                        continue  # the stored key expired in between: run as a first request
                    raise
                stored_fingerprint, answer = stored
                if stored_fingerprint != fingerprint.digest():
                    raise KeyReused() from None
                return answer.response(replayed=True)
            return answer.response(replayed=False)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _first(
        self, params: dict[str, Any], fingerprint: bytes, write: Callable[[], Awaitable[Response[Any]]]
    ) -> _Answer:
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute(self._forget_expired, params)
            await conn.execute(self._try_lock, params)
            token = request_transaction.set(conn)
            try:
                answer = _answer_of(await write())
            except ApiError as exc:
                if exc.status >= 500:
                    raise
                answer = _error_answer(exc)
            except psycopg.errors.LockNotAvailable:
                raise KeyInUse() from None
            finally:
                request_transaction.reset(token)
            await conn.execute(
                self._store,
                {
                    **params,
                    "fingerprint": fingerprint,
                    "status": answer.status,
                    "body": answer.body,
                    "headers": _encode_headers(answer.headers),
                },
            )
        return answer

    async def _lookup(self, params: dict[str, Any]) -> tuple[bytes, _Answer] | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._stored, params)
            row = await cur.fetchone()
        if row is None:
            return None
        fingerprint, status, body, headers = row
        return bytes(fingerprint), _Answer(status, bytes(body), _decode_headers(bytes(headers)))
