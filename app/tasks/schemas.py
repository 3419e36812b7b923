"""Task shapes on the wire. Request structs are decoded strictly (a JSON boolean, not `"true"`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.patterns import NO_NUL_PATTERN, trimmed_pattern

TITLE_MAX_CHARS = 500
DESCRIPTION_MAX_CHARS = 10_000

# A title is 1-500 characters once trimmed (app/patterns.py: the decoder and the docs agree).
TITLE_PATTERN = trimmed_pattern(TITLE_MAX_CHARS)

Title = Annotated[
    str,
    Meta(
        pattern=TITLE_PATTERN,
        description="Trimmed, then 1-500 characters; no NUL characters.",
        examples=["Buy milk"],
    ),
]
Description = Annotated[
    str,
    Meta(
        max_length=DESCRIPTION_MAX_CHARS,
        pattern=NO_NUL_PATTERN,
        description="At most 10,000 characters; no NUL characters.",
        examples=["2 litres, semi-skimmed"],
    ),
]

FIELD_RULES = {
    "title": "title must be 1-500 characters after trimming, without NUL characters",
    "description": "description must be null or at most 10,000 characters, without NUL characters",
    "completed": "completed must be a JSON boolean",
}


class Task(msgspec.Struct, frozen=True):
    """A task as the API returns it (exactly these keys). `version` is 1 at creation and grows by
    one on every change; the task's `ETag` is `"<version>"`."""

    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime
    version: int


TASK_COLUMNS = 8  # the columns every task statement returns first, in Task's order


class TaskCreate(msgspec.Struct, frozen=True):
    """Body of `POST /api/tasks`. Unknown keys (and server-owned ones such as `id`) are ignored."""

    title: Title
    description: Description | None = None
    completed: bool = False


class TaskUpdate(msgspec.Struct, frozen=True):
    """Body of `PUT /api/tasks/{id}`: omitted `description`/`completed` keep their values; null clears."""

    title: Title
    description: Description | UnsetType | None = UNSET
    completed: bool | UnsetType = UNSET


class CompletionChange(msgspec.Struct, frozen=True):
    """Body of `PATCH /api/tasks/{id}/complete`: `{"completed": bool}` sets; absent toggles."""

    completed: bool | UnsetType = UNSET


class TaskEnvelope(msgspec.Struct, frozen=True):
    data: Task


class ListMeta(msgspec.Struct, frozen=True):
    """`total`: tasks matching the filters (whatever the page); `next_cursor`: pass it as `after` for
    the next page (null on the last page)."""

    total: int
    limit: int
    offset: int
    next_cursor: str | None


class TaskListEnvelope(msgspec.Struct, frozen=True):
    data: list[Task]
    meta: ListMeta


TaskSort = Literal["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title"]
TaskStatus = Literal["all", "pending", "completed"]
