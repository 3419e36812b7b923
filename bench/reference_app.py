"""The benchmark's reference: a bare ASGI callable doing the same work per request as the service.

Not product code. It answers the routes the benchmark drives (`GET/POST /api/tasks`,
`GET/PUT /api/tasks/{id}`, `PATCH /api/tasks/{id}/complete`) the way the service does: the same
HS256 check with PyJWT (signature, required `exp`, leeway), a strict msgspec decode of the body, the
same SQL files through a pool built by the same `app.db.create_pool` from the same settings, the
same response bodies encoded by msgspec, and the same contract headers (`X-Request-ID`,
`Cache-Control: no-store`, `Location`). No framework: no routing table, no middleware stack, no
dependency injection, no OpenAPI, and only the error answers the benchmark could meet.

Run it as the benchmark does: `python -m bench.reference_app` (reads the same environment as
`python -m app.serve`: DATABASE_URL, JWT_SECRET, HOST, PORT, DB_POOL_*...).
"""

from __future__ import annotations

from typing import Any

import jwt
import msgspec
from msgspec import UNSET

from app.config import Settings
from app.db import SqlFiles, create_pool, open_pool
from app.edge import new_request_id
from app.errors import error_body
from app.serve import run_uvicorn
from app.sync.etags import list_etag, task_etag
from app.tasks.paging import NO_CURSOR
from app.tasks.schemas import (
    TASK_COLUMNS,
    CompletionEnvelope,
    CompletionMeta,
    ListMeta,
    Task,
    TaskCreate,
    TaskEnvelope,
    TaskListEnvelope,
    TaskUpdate,
)

Scope = dict[str, Any]

_encode = msgspec.json.Encoder().encode


class Unauthorized(Exception):
    pass


class ReferenceApp:
    def __init__(self, settings: Settings) -> None:
        assert settings.jwt_secret is not None
        self.settings = settings
        self.secret = settings.jwt_secret
        sql = SqlFiles()
        self.pool = create_pool(settings, sql)
        self.max_tasks = settings.tasks_max_per_user
        self.q_list = sql["tasks/list_newest"]  # the service's statement for its default order
        self.q_get = sql["tasks/get"]
        self.q_create = sql["tasks/create"]
        self.q_update = sql["tasks/update"]
        self.q_toggle = sql["tasks/toggle_completed"]
        self.q_set = sql["tasks/set_completed"]
        self.jwt_options: Any = {"require": ["exp"], "verify_sub": False}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        try:
            user = self._authenticate(headers.get(b"authorization"))
        except Unauthorized:
            await self._send(send, 401, error_body(401, "The token is invalid."))
            return
        method: str = scope["method"]
        parts = scope["path"].strip("/").split("/")  # ["api", "tasks", id?, "complete"?]
        if parts[:2] != ["api", "tasks"] or len(parts) > 4:
            await self._send(send, 404, error_body(404))
            return
        if len(parts) == 2:
            if method == "GET":
                await self._list(send, user)
            elif method == "POST":
                await self._create(send, user, await _read_body(receive))
            else:
                await self._send(send, 405, error_body(405))
            return
        try:
            task_id = int(parts[2])
        except ValueError:
            task_id = 0
        if not 0 < task_id < 2**63:
            await self._send(send, 404, error_body(404, "Task not found."))
            return
        if len(parts) == 3 and method == "GET":
            await self._one(send, self.q_get, {"user_id": user["id"], "id": task_id})
        elif len(parts) == 3 and method == "PUT":
            await self._update(send, user, task_id, await _read_body(receive))
        elif len(parts) == 4 and parts[3] == "complete" and method == "PATCH":
            body = await _read_body(receive)
            if body.strip() in (b"", b"{}", b"null"):
                await self._one(
                    send, self.q_toggle, {"user_id": user["id"], "id": task_id, "if_match": None}, completion=True
                )
            else:
                completed = msgspec.json.decode(body, type=dict[str, bool])["completed"]
                params = {"user_id": user["id"], "id": task_id, "completed": completed, "if_match": None}
                await self._one(send, self.q_set, params, completion=True)
        else:
            await self._send(send, 405, error_body(405))

    def _authenticate(self, header: bytes | None) -> dict[str, Any]:
        if not header:
            raise Unauthorized
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized
        try:
            claims = jwt.decode(
                token,
                key=self.secret,
                algorithms=["HS256"],
                options=self.jwt_options,
                leeway=self.settings.jwt_leeway_s,
            )
        except jwt.PyJWTError:
            raise Unauthorized from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized
        return {"id": sub, "email": claims.get("email"), "name": claims.get("name")}

    async def _list(self, send: Any, user: dict[str, Any]) -> None:
        params = {
            "user_id": user["id"],
            "completed": None,
            "pattern": None,
            "sort": "-created_at",
            "limit": 1001,  # as the service: one row more than the page says whether another follows
            "offset": 0,
            **NO_CURSOR,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q_list, params, binary=True)
            rows = await cur.fetchall()
        total = rows[0][TASK_COLUMNS] if rows else 0
        etag = list_etag((None, None, "-created_at", 1000, 0), total, [(row[0], row[7]) for row in rows])
        tasks = [Task(*row[:TASK_COLUMNS]) for row in rows]
        page = TaskListEnvelope(data=tasks, meta=ListMeta(total=total, limit=1000, offset=0, next_cursor=None))
        await self._send(send, 200, _encode(page), [(b"etag", etag.encode())])

    async def _create(self, send: Any, user: dict[str, Any], body: bytes) -> None:
        data = msgspec.json.decode(body, type=TaskCreate)
        params = {
            "user_id": user["id"],
            "email": user["email"],
            "name": user["name"],
            "title": data.title.strip(),
            "description": data.description,
            "completed": data.completed,
            "priority": data.priority or "none",
            "tags": [],
            "tag_keys": [],
            "due_at": None,
            "recurrence": None,
            "max_tasks": self.max_tasks,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.q_create, params, binary=True)
            row = await cur.fetchone()
        assert row is not None
        location = f"/api/tasks/{row[0]}".encode()
        task = Task(*row)
        headers = [(b"location", location), (b"etag", task_etag(task.version).encode())]
        await self._send(send, 201, _encode(TaskEnvelope(task)), headers)

    async def _update(self, send: Any, user: dict[str, Any], task_id: int, body: bytes) -> None:
        data = msgspec.json.decode(body, type=TaskUpdate)
        set_description = data.description is not UNSET
        params = {
            "user_id": user["id"],
            "id": task_id,
            "title": data.title.strip(),
            "set_description": set_description,
            "description": data.description if set_description else None,
            "completed": data.completed if isinstance(data.completed, bool) else None,
            "set_priority": False,
            "priority": None,
            "set_tags": False,
            "tags": None,
            "tag_keys": None,
            "set_due_at": False,
            "due_at": None,
            "set_recurrence": False,
            "recurrence": None,
            "if_match": None,
        }
        await self._one(send, self.q_update, params)

    async def _one(self, send: Any, query: bytes, params: dict[str, Any], *, completion: bool = False) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params, binary=True)
            row = await cur.fetchone()
        if row is None:
            await self._send(send, 404, error_body(404, "Task not found."))
        else:
            task = Task(*row)
            # A completion answers {"data", "meta": {"next"}} as the service does (the bench's tasks do not recur).
            body = _encode(CompletionEnvelope(task, CompletionMeta(None)) if completion else TaskEnvelope(task))
            await self._send(send, 200, body, [(b"etag", task_etag(task.version).encode())])

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", new_request_id()),
            (b"cache-control", b"no-store"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await open_pool(self.pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def create_app() -> ReferenceApp:
    return ReferenceApp(Settings.from_env())


def main() -> None:
    # The same uvicorn settings as `python -m app.serve`.
    run_uvicorn("bench.reference_app:create_app", Settings.from_env())


if __name__ == "__main__":
    main()
