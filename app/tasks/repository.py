"""TaskRepository: one method per SQL file in `sql/tasks/`, the caller's id bound in every one."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET
from psycopg_pool import AsyncConnectionPool

from app.auth.tokens import Caller
from app.db import SqlFiles, connection
from app.errors import QuotaExceeded, ServiceUnavailable
from app.tasks.paging import NO_CURSOR, ListCursor
from app.tasks.recurrence import next_due
from app.tasks.schemas import TASK_COLUMNS, TagCount, Task, TaskCreate, TaskSort, TaskUpdate, normalized_tags


class OrganizingFilters(msgspec.Struct, frozen=True):
    """The list's organizing filters; None: not filtered. `tag_keys` are case-folded, each must be on
    the task; `due_after` is inclusive, `due_before` exclusive; `overdue`: due before now and pending
    (true), or not (false)."""

    priorities: builtins.list[str] | None = None
    tag_keys: builtins.list[str] | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool | None = None


NO_FILTERS = OrganizingFilters()

# The versions a conditional write accepts (If-Match); None: any.
Versions = list[int] | None

# Completing a recurring task starts over when a concurrent write changed it between the read of its
# state and the completion; each round lets at least one writer through, so this is never reached
# in practice (20 concurrent toggles of one task finish within 2 rounds each).
COMPLETION_ROUNDS = 10


def _unset_or(value: Any) -> tuple[bool, Any]:
    """(set, value) for a PUT field: omitted (UNSET) keeps the column."""
    return (False, None) if value is UNSET else (True, value)


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
        self._update = sql["tasks/update"]
        self._toggle = sql["tasks/toggle_completed"]
        self._set_completed = sql["tasks/set_completed"]
        self._delete = sql["tasks/delete"]
        self._recurring_state = sql["tasks/recurring_state"]
        self._complete_recurring = sql["tasks/complete_recurring"]
        self._clear_completed = sql["tasks/clear_completed"]
        self._tags = sql["tasks/tags"]

    async def _one(self, query: bytes, params: dict[str, Any]) -> Task | None:
        async with connection(self.pool) as conn:
            cur = await conn.execute(query, params, binary=True)
            row = await cur.fetchone()
        return None if row is None else Task(*row)

    async def create(self, caller: Caller, data: TaskCreate) -> Task | None:
        """The new task, or None when the caller already has `max_tasks` tasks (nothing is written)."""
        tags, tag_keys = normalized_tags(data.tags)
        return await self._one(
            self._create,
            {
                "user_id": caller.id,
                "email": caller.email,
                "name": caller.name,
                "title": data.title.strip(),
                "description": data.description,
                "completed": data.completed,
                "priority": data.priority or "none",
                # None rather than []: see sql/tasks/create.sql.
                "tags": tags or None,
                "tag_keys": tag_keys or None,
                "due_at": data.due_at,
                "recurrence": data.recurrence,
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
        organizing: OrganizingFilters | None = None,
    ) -> tuple[list[Task], int, bool]:
        """One page (after `offset` rows, or after the place `after`), the total of the filtered set,
        and whether more rows follow the page (one round trip unless the page is empty)."""
        pattern = contains_pattern(q)
        filters = organizing or NO_FILTERS
        params = {
            "user_id": caller.id,
            "completed": completed,
            "pattern": pattern,
            "sort": sort,
            "limit": limit + 1,  # one more row than the page: is there a next page?
            "offset": offset,
            **(NO_CURSOR if after is None else after.params()),
            "priorities": filters.priorities,
            "tags": filters.tag_keys,
            "due_before": filters.due_before,
            "due_after": filters.due_after,
            "overdue": filters.overdue,
        }
        # Prepared (psycopg's default) except list.sql: its catch-all filters and ORDER BY CASE need
        # a plan made for the actual values to use an index, and PostgreSQL would settle on a
        # generic plan that reads every row of the user (see sql/tasks/list.sql). Planning costs
        # ~0.2 ms; the default order without filters, the page frontends ask for, keeps its
        # prepared plan.
        if pattern is None and sort == "-created_at" and filters == NO_FILTERS:
            page, prepare = self._list_newest, None
        else:
            page, prepare = self._list, False
        async with connection(self.pool) as conn:
            cur = await conn.execute(page, params, prepare=prepare, binary=True)
            rows = await cur.fetchall()
            if rows:
                page_rows = rows[:limit]
                return [Task(*row[:TASK_COLUMNS]) for row in page_rows], rows[0][TASK_COLUMNS], len(rows) > limit
            if offset == 0 and after is None:
                return [], 0, False
            # Past the end: the total has no row to ride on.
            cur = await conn.execute(self._count, params, prepare=prepare, binary=True)
            total_row = await cur.fetchone()
        return [], total_row[0] if total_row else 0, False

    async def update(self, caller: Caller, task_id: int, data: TaskUpdate, if_match: Versions = None) -> Task | None:
        """`if_match`: the versions the write may apply to (None: any); None back when none matched,
        or when the result would be a recurrence without a due date."""
        set_description, description = _unset_or(data.description)
        set_priority, priority = _unset_or(data.priority)
        set_tags, given_tags = _unset_or(data.tags)
        set_due_at, due_at = _unset_or(data.due_at)
        set_recurrence, recurrence = _unset_or(data.recurrence)
        # Unused unless set_tags (and None costs psycopg no array dumper: 2 µs a PUT).
        tags, tag_keys = normalized_tags(given_tags) if set_tags else (None, None)
        return await self._one(
            self._update,
            {
                "user_id": caller.id,
                "id": task_id,
                "title": data.title.strip(),
                "set_description": set_description,
                "description": description,
                "completed": data.completed if isinstance(data.completed, bool) else None,
                "set_priority": set_priority,
                "priority": priority or "none",
                "set_tags": set_tags,
                "tags": tags,
                "tag_keys": tag_keys,
                "set_due_at": set_due_at,
                "due_at": due_at,
                "set_recurrence": set_recurrence,
                "recurrence": recurrence,
                "if_match": if_match,
            },
        )

    async def complete(
        self, caller: Caller, task_id: int, completed: bool | None, if_match: Versions = None
    ) -> tuple[Task, Task | None] | None:
        """Toggle (`completed` None) or set completion: (the task, the next occurrence this created).
        None when the task does not exist or If-Match names another version.

        The plain statement runs first (one round trip, as for any task). It leaves alone a task
        whose completion must create a next occurrence; then the state is read, the next due date
        stepped (dateutil) and sql/tasks/complete_recurring.sql applies both at the version read,
        in a transaction that is rolled back (409) when the quota leaves no room for the occurrence.
        """
        params: dict[str, Any] = {"user_id": caller.id, "id": task_id, "if_match": if_match}
        if completed is None:
            plain = self._toggle
        else:
            plain, params["completed"] = self._set_completed, completed
        for _ in range(COMPLETION_ROUNDS):
            task = await self._one(plain, params)
            if task is not None:
                return task, None
            async with connection(self.pool) as conn:
                cur = await conn.execute(self._recurring_state, params, binary=True)
                state = await cur.fetchone()
            if state is None:
                return None
            version, is_completed, recurred, rule, due_at, occurrence = state
            if if_match is not None and version not in if_match:
                return None
            if is_completed or recurred or rule is None or completed is False:
                continue  # changed since the plain statement: it applies now
            recurring = {
                **params,
                "version": version,
                "next_due_at": next_due(rule, due_at, occurrence),
                "max_tasks": self.max_tasks,
            }
            async with connection(self.pool) as conn, conn.transaction():
                cur = await conn.execute(self._complete_recurring, recurring, binary=True)
                row = await cur.fetchone()
                if row is None:
                    continue  # changed since it was read: start over
                if recurring["next_due_at"] is not None and row[TASK_COLUMNS] is None:
                    raise QuotaExceeded(
                        f"Completing this task creates its next occurrence, and you have reached the limit of "
                        f"{self.max_tasks} tasks; delete some first.",
                        limit="task_quota",
                    )
            following = None if row[TASK_COLUMNS] is None else Task(*row[TASK_COLUMNS:])
            return Task(*row[:TASK_COLUMNS]), following
        raise ServiceUnavailable("The task is being changed by many requests at once; retry shortly.")

    async def clear_completed(self, caller: Caller) -> int:
        """Delete the caller's completed tasks; how many."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(self._clear_completed, {"user_id": caller.id}, binary=True)
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def tags(self, caller: Caller) -> builtins.list[TagCount]:
        async with connection(self.pool) as conn:
            cur = await conn.execute(self._tags, {"user_id": caller.id}, binary=True)
            rows = await cur.fetchall()
        return [TagCount(name, count) for name, count in rows]

    async def delete(self, caller: Caller, task_id: int, if_match: Versions = None) -> bool:
        async with connection(self.pool) as conn:
            params = {"user_id": caller.id, "id": task_id, "if_match": if_match}
            cur = await conn.execute(self._delete, params, binary=True)
            # The returned row, not rowcount: in a pipelined transaction (idempotent writes) the
            # count is only known once a result has been fetched.
            return await cur.fetchone() is not None
