"""TaskRepository: one method per SQL file in `sql/tasks/`, the caller's id bound in every one."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET
from psycopg_pool import AsyncConnectionPool

from app.auth.tokens import Caller
from app.db import SqlFiles, connection
from app.tasks.paging import NO_CURSOR, ListCursor
from app.tasks.schemas import TASK_COLUMNS, Task, TaskCreate, TaskSort, TaskUpdate

# The versions a conditional write accepts (If-Match); None: any.
Versions = list[int] | None


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
        self._list_newest = sql["tasks/list_newest"]
        self._count = sql["tasks/count"]
        self._search = sql["tasks/search"]
        self._search_count = sql["tasks/search_count"]
        self._update = sql["tasks/update"]
        self._toggle = sql["tasks/toggle_completed"]
        self._set_completed = sql["tasks/set_completed"]
        self._delete = sql["tasks/delete"]

    async def _one(self, query: bytes, params: dict[str, Any]) -> Task | None:
        async with connection(self.pool) as conn:
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
        after: ListCursor | None = None,
    ) -> tuple[list[Task], int, bool]:
        """One page (after `offset` rows, or after the place `after`), the total of the filtered set,
        and whether more rows follow the page (one round trip unless the page is empty)."""
        pattern = contains_pattern(q)
        params = {
            "user_id": caller.id,
            "completed": completed,
            "pattern": pattern,
            "sort": sort,
            "limit": limit + 1,  # one more row than the page: is there a next page?
            "offset": offset,
            **(NO_CURSOR if after is None else after.params()),
        }
        # Prepared (psycopg's default) except list.sql: its ORDER BY CASE needs a plan made for the
        # actual sort to walk an index, and PostgreSQL would settle on a generic plan that sorts
        # every row of the user (see sql/tasks/list_newest.sql). Planning costs ~0.2 ms; the
        # default order, the one frontends ask for, keeps its prepared plan.
        prepare: bool | None = None
        if pattern is not None:
            page, count = self._search, self._search_count
        elif sort == "-created_at":
            page, count = self._list_newest, self._count
        else:
            page, count, prepare = self._list, self._count, False
        async with connection(self.pool) as conn:
            cur = await conn.execute(page, params, prepare=prepare, binary=True)
            rows = await cur.fetchall()
            if rows:
                page_rows = rows[:limit]
                return [Task(*row[:TASK_COLUMNS]) for row in page_rows], rows[0][TASK_COLUMNS], len(rows) > limit
            if offset == 0 and after is None:
                return [], 0, False
            # Past the end: the total has no row to ride on.
            cur = await conn.execute(count, params, binary=True)
            total_row = await cur.fetchone()
        return [], total_row[0] if total_row else 0, False

    async def update(self, caller: Caller, task_id: int, data: TaskUpdate, if_match: Versions = None) -> Task | None:
        """`if_match`: the versions the write may apply to (None: any); None back when none matched."""
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
                "if_match": if_match,
            },
        )

    async def toggle_completed(self, caller: Caller, task_id: int, if_match: Versions = None) -> Task | None:
        return await self._one(self._toggle, {"user_id": caller.id, "id": task_id, "if_match": if_match})

    async def set_completed(
        self, caller: Caller, task_id: int, completed: bool, if_match: Versions = None
    ) -> Task | None:
        params = {"user_id": caller.id, "id": task_id, "completed": completed, "if_match": if_match}
        return await self._one(self._set_completed, params)

    async def delete(self, caller: Caller, task_id: int, if_match: Versions = None) -> bool:
        async with connection(self.pool) as conn:
            params = {"user_id": caller.id, "id": task_id, "if_match": if_match}
            cur = await conn.execute(self._delete, params, binary=True)
            # The returned row, not rowcount: in a pipelined transaction (idempotent writes) the
            # count is only known once a result has been fetched.
            return await cur.fetchone() is not None
