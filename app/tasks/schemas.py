"""Task shapes on the wire. Request structs are decoded strictly (a JSON boolean, not `"true"`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from app.patterns import NO_NUL_PATTERN, WHITESPACE, trimmed_pattern
from app.tasks import recurrence

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

MAX_TAGS = 20
TAG_MAX_CHARS = 50
_CONTROL = r"\x00-\x1f\x7f-\x9f"  # Unicode's control characters (Cc)
# A tag is trimmed, then 1-50 characters with no control character (surrounding whitespace, tabs
# included, is trimmed away first).
TAG_PATTERN = (
    rf"^[{WHITESPACE}]*[^{WHITESPACE}{_CONTROL}]"
    rf"(?:[^{_CONTROL}]{{0,{TAG_MAX_CHARS - 2}}}[^{WHITESPACE}{_CONTROL}])?[{WHITESPACE}]*$"
)

Tag = Annotated[
    str,
    Meta(
        pattern=TAG_PATTERN,
        description="Trimmed, then 1-50 characters; no control characters.",
        examples=["errands"],
    ),
]
Tags = Annotated[
    list[Tag],
    Meta(
        max_length=MAX_TAGS,
        description="At most 20 tags, in the order given; duplicates that differ only by case collapse to the first.",
        examples=[["errands", "Home"]],
    ),
]
Priority = Literal["none", "low", "medium", "high"]
# RFC 3339 with an offset or Z (stored and returned in UTC).
DueAt = Annotated[
    datetime,
    Meta(tz=True, description="RFC 3339 with an offset or Z; returned in UTC.", examples=["2026-12-01T09:00:00Z"]),
]
Recurrence = Annotated[
    str,
    Meta(
        pattern=recurrence.PATTERN,
        max_length=recurrence.MAX_CHARS,
        description=(
            "An RFC 5545 RRULE subset: FREQ=DAILY|WEEKLY|MONTHLY|YEARLY, INTERVAL, BYDAY (WEEKLY), COUNT or "
            "UNTIL (YYYYMMDDTHHMMSSZ). Needs a due_at."
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,TH"],
    ),
]

FIELD_RULES = {
    "title": "title must be 1-500 characters after trimming, without NUL characters",
    "description": "description must be null or at most 10,000 characters, without NUL characters",
    "completed": "completed must be a JSON boolean",
    "priority": "priority must be one of none, low, medium, high (or null)",
    "tags": "tags must be at most 20 strings, each 1-50 characters after trimming, without control characters",
    "due_at": "due_at must be null or an RFC 3339 timestamp with an offset or Z",
    "recurrence": recurrence.RULE,
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
    priority: Priority
    tags: list[str]
    due_at: datetime | None
    recurrence: str | None
    completed_at: datetime | None


# The columns every task statement returns first, in Task's order (sql/tasks/*.sql, sync/changes.sql).
TASK_COLUMNS = 13


class TaskCreate(msgspec.Struct, frozen=True):
    """Body of `POST /api/tasks`. Unknown keys (and server-owned ones such as `id`) are ignored."""

    title: Title
    description: Description | None = None
    completed: bool = False
    priority: Priority | None = None
    tags: Tags | None = None
    due_at: DueAt | None = None
    recurrence: Recurrence | None = None


class TaskUpdate(msgspec.Struct, frozen=True):
    """Body of `PUT /api/tasks/{id}`: an omitted key keeps its value; null clears (priority back to
    none, tags to [])."""

    title: Title
    description: Description | UnsetType | None = UNSET
    completed: bool | UnsetType = UNSET
    priority: Priority | UnsetType | None = UNSET
    tags: Tags | UnsetType | None = UNSET
    due_at: DueAt | UnsetType | None = UNSET
    recurrence: Recurrence | UnsetType | None = UNSET


class CompletionChange(msgspec.Struct, frozen=True):
    """Body of `PATCH /api/tasks/{id}/complete`: `{"completed": bool}` sets; absent toggles."""

    completed: bool | UnsetType = UNSET


class TaskEnvelope(msgspec.Struct, frozen=True):
    data: Task


class CompletionMeta(msgspec.Struct, frozen=True):
    """`next`: the recurring task's next occurrence, created by this completion; null when the task
    does not recur, was not completed by this request, already had its next occurrence, or its rule
    is exhausted."""

    next: Task | None


class CompletionEnvelope(msgspec.Struct, frozen=True):
    data: Task
    meta: CompletionMeta


class TagCount(msgspec.Struct, frozen=True):
    """A tag (the spelling most of its tasks use) and how many of the caller's tasks carry it."""

    name: str
    count: int


class TagsEnvelope(msgspec.Struct, frozen=True):
    data: list[TagCount]


class ClearedCount(msgspec.Struct, frozen=True):
    deleted: int


class ClearedEnvelope(msgspec.Struct, frozen=True):
    data: ClearedCount


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


TaskSort = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "title",
    "-title",
    "due_at",
    "-due_at",
    "priority",
    "-priority",
]


def normalized_tags(tags: list[str] | None) -> tuple[list[str], list[str]]:
    """(tags, keys): each tag trimmed, a tag whose case-folded form came earlier dropped (the first
    spelling wins), order kept; keys are the case-folded forms, what tag= and GET /api/tags match."""
    kept: list[str] = []
    keys: list[str] = []
    for tag in tags or ():
        tag = tag.strip()
        key = tag.casefold()
        if key not in keys:
            kept.append(tag)
            keys.append(key)
    return kept, keys


TaskStatus = Literal["all", "pending", "completed"]
