"""TaskRepository: one method per SQL file in `sql/tasks/`, the caller's id bound in every one."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET
from psycopg_pool import AsyncConnectionPool

from app.auth.tokens import Caller
from app.db import SqlFiles
from app.tasks.schemas import Task, TaskCreate, TaskSort, TaskUpdate


def contains_pattern(q: str | None) -> str | None:
    """A regular expression (for `~*`) matching `q` as a literal substring: PostgreSQL's `***=`
    director makes the rest of the expression a literal string, so no character of `q` is special.
    An empty `q` filters nothing (None)."""
    if not q:
        return None
    return f"***={q}"


class TaskRepository:
    """Runs the task statements through the pool; returns `Task` structs."""

    def __init__(self, pool: AsyncConnectionPool, sql: SqlFiles, *, max_tasks: int) -> None:
        self.pool = pool
        self.max_tasks = max_tasks
        self._create = sql["tasks/create"]
        self._get = sql["tasks/get"]
        self._list = sql["tasks/list"]
        self._count = sql["tasks/count"]
        self._search = sql["tasks/search"]
        self._search_count = sql["tasks/search_count"]
        self._update = sql["tasks/update"]
        self._toggle = sql["tasks/toggle_completed"]
        self._set_completed = sql["tasks/set_completed"]
        self._delete = sql["tasks/delete"]

    async def _one(self, query: bytes, params: dict[str, Any]) -> Task | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params, binary=True)
            row = await cur.fetchone()
        return None if row is None else Task(*row)

    async def create(self, caller: Caller, data: TaskCreate) -> Task | None:
        """The new task, or None when the caller already has `max_tasks` tasks (nothing is written)."""
        return await self._one(
            self._create,
            {
                "user_id": caller.id,
                "email": caller.email,
                "name": caller.name,
                "title": data.title.strip(),
                "description": data.description,
                "completed": data.completed,
                "max_tasks": self.max_tasks,
            },
        )

    async def get(self, caller: Caller, task_id: int) -> Task | None:
        return await self._one(self._get, {"user_id": caller.id, "id": task_id})

    async def list(
        self,
        caller: Caller,
        *,
        completed: bool | None,
        q: str | None,
        sort: TaskSort,
        limit: int,
        offset: int,
    ) -> tuple[list[Task], int]:
        """One page and the total of the filtered set (one round trip unless the page is empty)."""
        pattern = contains_pattern(q)
        params = {
            "user_id": caller.id,
            "completed": completed,
            "pattern": pattern,
            "sort": sort,
            "limit": limit,
            "offset": offset,
        }
        page, count = (self._list, self._count) if pattern is None else (self._search, self._search_count)
        async with self.pool.connection() as conn:
            cur = await conn.execute(page, params, binary=True)
            rows = await cur.fetchall()
            if rows:
                return [Task(*row[:7]) for row in rows], rows[0][7]
            if offset == 0:
                return [], 0
            # Past the end: the total has no row to ride on.
            cur = await conn.execute(count, params, binary=True)
            total_row = await cur.fetchone()
        return [], total_row[0] if total_row else 0

    async def update(self, caller: Caller, task_id: int, data: TaskUpdate) -> Task | None:
        set_description = data.description is not UNSET
        return await self._one(
            self._update,
            {
                "user_id": caller.id,
                "id": task_id,
                "title": data.title.strip(),
                "set_description": set_description,
                "description": data.description if set_description else None,
                "completed": data.completed if isinstance(data.completed, bool) else None,
            },
        )

    async def toggle_completed(self, caller: Caller, task_id: int) -> Task | None:
        return await self._one(self._toggle, {"user_id": caller.id, "id": task_id})

    async def set_completed(self, caller: Caller, task_id: int, completed: bool) -> Task | None:
        return await self._one(self._set_completed, {"user_id": caller.id, "id": task_id, "completed": completed})

    async def delete(self, caller: Caller, task_id: int) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._delete, {"user_id": caller.id, "id": task_id}, binary=True)
            return cur.rowcount == 1
