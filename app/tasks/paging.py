"""Keyset paging of the task list: `after=<cursor>` continues a list where its previous page ended.

A cursor is the sort it belongs to and the last row's place in that order: its sort key and its id
(ids break ties, so the place is exact). The next page is the rows strictly after that place, found
through the index (`(created_at, id) < (...)` for the default order) instead of counting `offset`
rows from the top, so page 500 costs what page 1 does, and a task created or deleted meanwhile
neither repeats nor skips one. Cursors are opaque to clients (base64url of a JSON array); one made
for another sort, or anything that is not one of ours, is a 422 naming `after`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.errors import FieldError, InvalidInput
from app.tasks.schemas import Task, TaskSort

MAX_ID = 2**63 - 1
AFTER_MAX_CHARS = 2048
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The sort key each sort orders by: a timestamp (sent as microseconds since the epoch) or text.
_TIME_SORTS = {"created_at", "-created_at", "updated_at", "-updated_at"}
_TEXT_SORTS = {"title", "-title"}
# A due date (microseconds since the epoch, or null for the tasks without one, which come last).
_DUE_SORTS = {"due_at", "-due_at"}
# A priority, by its name.
_PRIORITY_SORTS = {"priority", "-priority"}
_PRIORITIES = {"none", "low", "medium", "high"}


def _invalid(message: str = "after must be meta.next_cursor of a previous page of this list") -> InvalidInput:
    return InvalidInput([FieldError("after", message)])


class ListCursor(msgspec.Struct, frozen=True, array_like=True):
    """The place after the last row of a page: `key` is that row's sort key (int microseconds for a
    time, str for a title or a priority, null for a task without a due date), `id` its id."""

    sort: str
    key: int | str | None
    id: int

    def encode(self) -> str:
        return base64.urlsafe_b64encode(msgspec.json.encode(self)).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str, sort: TaskSort) -> ListCursor:
        """The cursor in `text`, for a list in `sort` order; 422 (field `after`) when it is not one."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            cursor = msgspec.json.decode(raw, type=cls)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise _invalid() from None
        if cursor.sort != sort:
            raise _invalid(f"after is a cursor of a list sorted by {cursor.sort!r}, not {sort!r}")
        time_key = isinstance(cursor.key, int) and cursor.sort in _TIME_SORTS | _DUE_SORTS
        text_key = isinstance(cursor.key, str) and cursor.sort in _TEXT_SORTS and "\x00" not in cursor.key
        priority_key = cursor.key in _PRIORITIES and cursor.sort in _PRIORITY_SORTS
        no_due_date = cursor.key is None and cursor.sort in _DUE_SORTS
        if not (time_key or text_key or priority_key or no_due_date) or not 0 < cursor.id <= MAX_ID:
            raise _invalid()
        if time_key:
            try:
                cursor.time()
            except OverflowError:
                raise _invalid() from None
        return cursor

    def time(self) -> datetime:
        assert isinstance(self.key, int)
        return _EPOCH + timedelta(microseconds=self.key)

    def params(self) -> dict[str, Any]:
        """The SQL parameters of the place (the list statements' `after_*`)."""
        return {
            "after_id": self.id,
            "after_time": self.time() if isinstance(self.key, int) else None,
            "after_text": self.key if isinstance(self.key, str) else None,
        }


NO_CURSOR: dict[str, Any] = {"after_id": None, "after_time": None, "after_text": None}


def cursor_after(task: Task, sort: TaskSort) -> ListCursor:
    """The cursor that continues a `sort`-ordered list after `task`."""
    key: int | str | None
    if sort in _TEXT_SORTS:
        key = task.title
    elif sort in _PRIORITY_SORTS:
        key = task.priority
    elif sort in _DUE_SORTS:
        key = None if task.due_at is None else (task.due_at - _EPOCH) // timedelta(microseconds=1)
    else:
        moment = task.created_at if sort.endswith("created_at") else task.updated_at
        key = (moment - _EPOCH) // timedelta(microseconds=1)
    return ListCursor(sort, key, task.id)
