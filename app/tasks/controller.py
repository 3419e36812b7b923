"""`/api/tasks`: the six task endpoints. Validation here, SQL in the repository, isolation in SQL."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import Parameter

from app.auth.tokens import Caller
from app.body import ApiOperation, documented_body, documented_headers, header_value, read_json
from app.errors import (
    ApiError,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    RateLimited,
    error_responses,
)
from app.rate_limit import ConcurrencyLimit, RateLimiter
from app.responses import NOT_MODIFIED, JsonResponse, RawResponse, not_modified
from app.sync.etags import if_match_versions, list_etag, none_match, task_etag
from app.sync.idempotency import IDEMPOTENCY_KEY_PATTERN, Idempotency
from app.tasks import recurrence
from app.tasks.paging import AFTER_MAX_CHARS, ListCursor, cursor_after
from app.tasks.repository import OrganizingFilters, TaskRepository
from app.tasks.schemas import (
    FIELD_RULES,
    MAX_TAGS,
    TAG_PATTERN,
    ClearedCount,
    ClearedEnvelope,
    CompletionChange,
    CompletionEnvelope,
    CompletionMeta,
    DueAt,
    ListMeta,
    TagsEnvelope,
    Task,
    TaskCreate,
    TaskEnvelope,
    TaskListEnvelope,
    TaskSort,
    TaskStatus,
    TaskUpdate,
    normalized_tags,
)

MAX_ID = 2**63 - 1  # ids are bigint; anything larger cannot exist
Q_MAX_CHARS = 200
_TOGGLE = CompletionChange()

TaskId = Annotated[int, Parameter(description="The task's id (a positive integer).")]
IF_MATCH = OpenAPIParameter(
    name="If-Match",
    param_in=ParamType.HEADER,
    schema=Schema(type=OpenAPIType.STRING),
    description='Apply only if the task\'s ETag is one of these (`"3"`, or `*` for any): else 412.',
)
IF_NONE_MATCH = OpenAPIParameter(
    name="If-None-Match",
    param_in=ParamType.HEADER,
    schema=Schema(type=OpenAPIType.STRING),
    description="304 (no body) when the current ETag is one of these.",
)
IDEMPOTENCY_KEY = OpenAPIParameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    schema=Schema(type=OpenAPIType.STRING, pattern=IDEMPOTENCY_KEY_PATTERN),
    description=(
        "1-255 visible ASCII characters, unique per intended write. A retry with the same key and "
        "the same request gets the first answer again (`Idempotent-Replayed: true`) and changes "
        "nothing; 409 while the first is still running; 422 if the key was used for another request."
    ),
)
_VALID_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _idempotency_key(request: Request[Caller, Any, Any]) -> str | None:
    """The request's Idempotency-Key, if any; 422 (nothing done) when it is not 1-255 visible ASCII."""
    key = header_value(request, b"idempotency-key")
    if key is not None and not _VALID_KEY.match(key):
        raise InvalidInput([FieldError("Idempotency-Key", "Idempotency-Key must be 1-255 visible ASCII characters")])
    return key


_DELETED = RawResponse(204)
# Litestar documents a `Response[None]` as a JSON null; a 204 has no body at all.
_NO_CONTENT = {204: ResponseSpec(data_container=None, description="Deleted; no body.", generate_examples=False)}


async def _once(
    request: Request[Caller, Any, Any], key: str | None, write: Callable[[], Awaitable[Response[Any]]]
) -> Response[Any]:
    """Run `write`, through the idempotency store when the client sent a key."""
    if key is None:
        return await write()
    idempotency: Idempotency = request.app.state.idempotency
    return await idempotency.run(request, key, write)


ETAG_HEADER = ResponseHeader(
    name="ETag",
    value='"1"',  # documentation only: gives the header its string schema
    description='The version of what was answered: `"<version>"` for a task.',
    required=True,
    documentation_only=True,
)


def _etagged(
    task: Task, status_code: int | None = None, headers: dict[str, str] | None = None
) -> Response[TaskEnvelope]:
    return JsonResponse(
        TaskEnvelope(task), status_code=status_code, headers={"ETag": task_etag(task.version), **(headers or {})}
    )


REPLAYED_HEADER = ResponseHeader(
    name="Idempotent-Replayed",
    value="true",
    description="Present (true) when this is the stored answer of an earlier request with the same Idempotency-Key.",
    required=False,
    documentation_only=True,
)


async def _absent(tasks: TaskRepository, caller: Caller, task_id: int, if_match: list[int] | None) -> ApiError:
    """Why a write found nothing to change: the task is gone (404), or If-Match named another version
    of a task that exists (412). The write changed nothing either way."""
    if if_match is not None and await tasks.get(caller, task_id) is not None:
        return PreconditionFailed()
    return NotFound()


_NEEDS_DUE_AT = FieldError("recurrence", "recurrence needs a due_at: set one, or clear recurrence")


async def _not_updated(tasks: TaskRepository, caller: Caller, task_id: int, if_match: list[int] | None) -> ApiError:
    """Why a PUT changed nothing: as `_absent`, or the result would have a recurrence without a due
    date (the task exists and If-Match, if any, matched): 422."""
    task = await tasks.get(caller, task_id)
    if task is None:
        return NotFound()
    if if_match is not None and task.version not in if_match:
        return PreconditionFailed()
    return InvalidInput([_NEEDS_DUE_AT])


def _check_organizing(data: TaskCreate | TaskUpdate) -> None:
    """What the decoder cannot say: the recurrence rule's meaning, a due date beyond the calendar in
    UTC, a recurrence without a due date (422, nothing done). On PUT an omitted due_at may exist on
    the task: that case is the statement's (see `_not_updated`)."""
    problems: list[FieldError] = []
    if isinstance(data.due_at, datetime):
        try:
            data.due_at.astimezone(UTC)
        except OverflowError:
            problems.append(FieldError("due_at", "due_at must be within the years 1-9999 in UTC"))
    if isinstance(data.recurrence, str):
        problem = recurrence.check(data.recurrence)
        if problem is not None:
            problems.append(problem)
        elif data.due_at is None:  # on PUT, an omitted due_at is the task's own: see `_not_updated`
            problems.append(_NEEDS_DUE_AT)
    if problems:
        raise InvalidInput(problems)


def _bounded(low: int, high: int, description: str) -> Any:
    """An integer query parameter in [low, high], documented exactly: Litestar writes `ge`/`le` as
    floats, and 2**63 - 1 as a float is 2**63, a value the API rejects.
    """
    return Parameter(ge=low, le=high, description=description, schema_extra={"minimum": low, "maximum": high})


def count_write(request: Request[Caller, Any, Any]) -> None:
    """WRITE_RATE_PER_MIN, per user and per worker process: 429 before the request does anything."""
    write_rate: RateLimiter = request.app.state.write_rate
    wait = write_rate.take(request.user.id)
    if wait is not None:
        raise RateLimited("Too many task changes; retry later.", wait, limit="write_rate")


def _existing_id(task_id: int) -> int:
    """Ids that cannot exist are simply not found (and never reach SQL as an out-of-range bigint)."""
    if not 0 < task_id <= MAX_ID:
        raise NotFound()
    return task_id


_PRIORITY = "(?:none|low|medium|high)"
PRIORITY_LIST_PATTERN = rf"^{_PRIORITY}(?:,{_PRIORITY})*$"
_TAG = re.compile(TAG_PATTERN)


def _moment(name: str, text: str | None) -> datetime | None:
    """A due_before/due_after value: RFC 3339 with an offset or Z; 422 naming it otherwise."""
    if text is None:
        return None
    try:
        moment = msgspec.convert(text, DueAt)
    except msgspec.ValidationError:
        raise InvalidInput(
            [FieldError(name, f"{name} must be an RFC 3339 timestamp with an offset or Z, e.g. 2026-12-01T09:00:00Z")]
        ) from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC: before or after every due date
        return datetime.min.replace(tzinfo=UTC) if moment.year == 1 else datetime.max.replace(tzinfo=UTC)


def _organizing_filters(
    priority: str | None, tag: list[str] | None, due_before: str | None, due_after: str | None, overdue: str | None
) -> OrganizingFilters | None:
    """The list's organizing filters (None: none given); 422 naming the parameter that is not valid."""
    if priority is None and tag is None and due_before is None and due_after is None and overdue is None:
        return None
    tag_keys = None
    if tag is not None:
        if len(tag) > MAX_TAGS or not all(_TAG.match(one) for one in tag):
            raise InvalidInput(
                [
                    FieldError(
                        "tag",
                        f"tag must be 1-50 characters after trimming, without control characters, "
                        f"at most {MAX_TAGS} times",
                    )
                ]
            )
        tag_keys = normalized_tags(tag)[1]
    return OrganizingFilters(
        priorities=None if priority is None else sorted(set(priority.split(","))),
        tag_keys=tag_keys,
        due_before=_moment("due_before", due_before),
        due_after=_moment("due_after", due_after),
        overdue=None if overdue is None else overdue == "true",
    )


_STATUS_COMPLETED: dict[str | None, bool | None] = {
    None: None,
    "all": None,
    "pending": False,
    "completed": True,
}


class TasksController(Controller):
    """Every handler reads the caller from `request.user` (set by the auth middleware)."""

    path = "/api/tasks"
    tags = ["Tasks"]
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="ListTasks",
        operation_class=documented_headers(ApiOperation, IF_NONE_MATCH),
        summary="List my tasks",
        responses={**error_responses(400, 401, 422, 429, 503), **NOT_MODIFIED},
        response_headers=[ETAG_HEADER],
    )
    async def list_tasks(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        completed: Annotated[
            Literal["true", "false"] | None,
            Parameter(description="Only completed (true) or pending (false)."),
        ] = None,
        status: Annotated[TaskStatus | None, Parameter(description="Alias filter: all, pending, completed.")] = None,
        q: Annotated[
            str | None,
            Parameter(
                pattern=r"^[^\x00]*$",
                max_length=Q_MAX_CHARS,
                description="Case-insensitive substring of title or description, at most 200 characters; "
                "% and _ are literal.",
            ),
        ] = None,
        sort: Annotated[TaskSort, Parameter(description="Sort key; '-' means descending.")] = "-created_at",
        limit: Annotated[int, _bounded(1, 1000, "Page size.")] = 1000,
        offset: Annotated[int, _bounded(0, MAX_ID, "Tasks to skip (not with `after`).")] = 0,
        after: Annotated[
            str | None,
            Parameter(
                max_length=AFTER_MAX_CHARS,
                description="`meta.next_cursor` of the previous page: the page after it, in the same sort "
                "(keyset paging; not with `offset`).",
            ),
        ] = None,
        priority: Annotated[
            str | None,
            Parameter(
                pattern=PRIORITY_LIST_PATTERN,
                description="Only these priorities: one, or a comma list (`high,medium`).",
            ),
        ] = None,
        tag: Annotated[
            list[str] | None,
            Parameter(
                description="Only tasks with this tag (case-insensitive); repeat it for tasks with every one "
                f"(at most {MAX_TAGS}).",
                max_items=MAX_TAGS,
                schema_extra={"maxItems": MAX_TAGS, "items": {"type": "string", "pattern": TAG_PATTERN}},
            ),
        ] = None,
        due_before: Annotated[
            str | None,
            Parameter(
                max_length=64,
                description="Only tasks due before this time (exclusive): RFC 3339 with an offset or Z "
                "(encode `+` as `%2B`).",
                schema_extra={"format": "date-time"},
            ),
        ] = None,
        due_after: Annotated[
            str | None,
            Parameter(
                max_length=64,
                description="Only tasks due at or after this time (inclusive): RFC 3339 with an offset or Z.",
                schema_extra={"format": "date-time"},
            ),
        ] = None,
        overdue: Annotated[
            Literal["true", "false"] | None,
            Parameter(description="true: only pending tasks due before now; false: only the others."),
        ] = None,
    ) -> Response[TaskListEnvelope]:
        """Newest first by default; ties broken by id. `completed` and `status` together must both hold.
        `meta.next_cursor` continues the list with `after` (null on the last page).
        The ETag changes whenever any task of this list would (or one enters or leaves it)."""
        place = None
        if after is not None:
            if "offset" in request.query_params:
                raise InvalidInput([FieldError("after", "after and offset cannot be used together")])
            place = ListCursor.decode(after, sort)
        organizing = _organizing_filters(priority, tag, due_before, due_after, overdue)
        by_param = None if completed is None else completed == "true"
        by_status = _STATUS_COMPLETED[status]
        want = by_param if by_param is not None else by_status
        if by_param is not None and by_status is not None and by_param != by_status:
            # Both filters must hold, and together they hold for no task: an empty page, not an error.
            rows: list[Task] = []
            total, more = 0, False
        else:
            # A search (q) holds one of the caller's search places while it runs.
            searches: ConcurrencyLimit = request.app.state.searches
            async with searches.hold(request.user.id) if q else nullcontext():
                rows, total, more = await tasks.list(
                    request.user,
                    completed=want,
                    q=q,
                    sort=sort,
                    limit=limit,
                    offset=offset,
                    after=place,
                    organizing=organizing,
                )
        next_cursor = cursor_after(rows[-1], sort).encode() if more else None
        etag = list_etag(
            (want, q, sort, limit, offset, after, more, organizing), total, [(task.id, task.version) for task in rows]
        )
        if none_match(header_value(request, b"if-none-match"), etag):
            return not_modified(etag)
        meta = ListMeta(total=total, limit=limit, offset=offset, next_cursor=next_cursor)
        return JsonResponse(TaskListEnvelope(data=rows, meta=meta), headers={"ETag": etag})

    @post(
        "/",
        operation_id="CreateTask",
        summary="Create a task",
        operation_class=documented_headers(documented_body(TaskCreate), IDEMPOTENCY_KEY),
        responses=error_responses(400, 401, 409, 413, 415, 422, 429, 503),
        response_headers=[
            ResponseHeader(
                name="Location",
                value="/api/tasks/{id}",  # documentation only: gives the header its string schema
                description="The new task's URL.",
                required=True,
                documentation_only=True,
            ),
            ETAG_HEADER,
            REPLAYED_HEADER,
        ],
    )
    async def create_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
    ) -> Response[TaskEnvelope]:
        """409 `QUOTA_EXCEEDED` when the caller already has TASKS_MAX_PER_USER tasks."""
        count_write(request)
        idempotency_key = _idempotency_key(request)
        data = await read_json(request, TaskCreate, field_rules=FIELD_RULES)
        _check_organizing(data)

        async def write() -> Response[Any]:
            task = await tasks.create(request.user, data)
            if task is None:
                raise QuotaExceeded(
                    f"You have reached the limit of {tasks.max_tasks} tasks; delete some first.", limit="task_quota"
                )
            return _etagged(task, 201, {"Location": f"/api/tasks/{task.id}"})

        return await _once(request, idempotency_key, write)

    @get(
        "/{task_id:int}",
        operation_id="GetTask",
        operation_class=documented_headers(ApiOperation, IF_NONE_MATCH),
        summary="Get one of my tasks",
        responses={**error_responses(401, 404, 503), **NOT_MODIFIED},
        response_headers=[ETAG_HEADER],
    )
    async def get_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        task_id: TaskId,
    ) -> Response[TaskEnvelope]:
        task = await tasks.get(request.user, _existing_id(task_id))
        if task is None:
            raise NotFound()
        if none_match(header_value(request, b"if-none-match"), etag := task_etag(task.version)):
            return not_modified(etag)
        return _etagged(task)

    @put(
        "/{task_id:int}",
        operation_id="UpdateTask",
        summary="Replace a task's fields",
        operation_class=documented_headers(documented_body(TaskUpdate), IF_MATCH, IDEMPOTENCY_KEY),
        responses=error_responses(400, 401, 404, 409, 412, 413, 415, 422, 429, 503),
        response_headers=[ETAG_HEADER, REPLAYED_HEADER],
    )
    async def update_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        task_id: TaskId,
    ) -> Response[TaskEnvelope]:
        """`title` required; any other key omitted is kept; `null` clears it (`priority` back to none,
        `tags` to []). 422 when the result would have a recurrence without a due_at."""
        task_id = _existing_id(task_id)
        count_write(request)
        idempotency_key = _idempotency_key(request)
        data = await read_json(request, TaskUpdate, field_rules=FIELD_RULES)
        _check_organizing(data)
        versions = if_match_versions(header_value(request, b"if-match"))

        async def write() -> Response[Any]:
            task = await tasks.update(request.user, task_id, data, versions)
            if task is None:
                raise await _not_updated(tasks, request.user, task_id, versions)
            return _etagged(task)

        return await _once(request, idempotency_key, write)

    @delete(
        "/{task_id:int}",
        operation_id="DeleteTask",
        operation_class=documented_headers(ApiOperation, IF_MATCH, IDEMPOTENCY_KEY),
        summary="Delete a task",
        status_code=204,
        responses={**error_responses(401, 404, 409, 412, 422, 429, 503), **_NO_CONTENT},
    )
    async def delete_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        task_id: TaskId,
    ) -> Response[None]:
        task_id = _existing_id(task_id)
        count_write(request)
        idempotency_key = _idempotency_key(request)
        versions = if_match_versions(header_value(request, b"if-match"))

        async def write() -> Response[Any]:
            if not await tasks.delete(request.user, task_id, versions):
                raise await _absent(tasks, request.user, task_id, versions)
            return _DELETED

        return await _once(request, idempotency_key, write)

    @patch(
        "/{task_id:int}/complete",
        operation_id="CompleteTask",
        summary="Toggle, or set, a task's completion",
        operation_class=documented_headers(
            documented_body(CompletionChange, required=False, nullable=True), IF_MATCH, IDEMPOTENCY_KEY
        ),
        responses=error_responses(400, 401, 404, 409, 412, 413, 415, 422, 429, 503),
        response_headers=[ETAG_HEADER, REPLAYED_HEADER],
    )
    async def complete_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        task_id: TaskId,
    ) -> Response[CompletionEnvelope]:
        """No body, an empty body, `{}` or `null` toggles atomically; `{"completed": bool}` sets it.
        When this completes a recurring task, its next occurrence is created in the same transaction
        and returned as `meta.next` (else null); 409 `QUOTA_EXCEEDED` (nothing changed) when the
        caller has no room for it."""
        task_id = _existing_id(task_id)
        count_write(request)
        idempotency_key = _idempotency_key(request)
        change = await read_json(request, CompletionChange | None, field_rules=FIELD_RULES, empty=_TOGGLE)  # type: ignore[arg-type]
        versions = if_match_versions(header_value(request, b"if-match"))

        completed = change.completed if change is not None and isinstance(change.completed, bool) else None

        async def write() -> Response[Any]:
            done = await tasks.complete(request.user, task_id, completed, versions)
            if done is None:
                raise await _absent(tasks, request.user, task_id, versions)
            task, following = done
            envelope = CompletionEnvelope(task, CompletionMeta(following))
            return JsonResponse(envelope, headers={"ETag": task_etag(task.version)})

        return await _once(request, idempotency_key, write)

    @delete(
        "/",
        operation_id="ClearCompletedTasks",
        operation_class=documented_headers(ApiOperation, IDEMPOTENCY_KEY),
        summary="Delete all my completed tasks",
        status_code=200,
        responses=error_responses(401, 409, 422, 429, 503),
        response_headers=[REPLAYED_HEADER],
    )
    async def clear_completed(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        completed: Annotated[
            Literal["true"],
            Parameter(description="Required, and only `true`: the query that names what is deleted."),
        ],
    ) -> Response[ClearedEnvelope]:
        """Only `?completed=true`: deletes the caller's completed tasks and answers how many. Any other
        query, or none, is a 422 and deletes nothing: never a mass delete. `If-Match` names one
        task's version, so it has no meaning here: 422."""
        if set(request.query_params.keys()) != {"completed"} or request.query_params.getall("completed") != ["true"]:
            raise InvalidInput(
                [FieldError("completed", "DELETE /api/tasks needs exactly ?completed=true (clears completed tasks)")]
            )
        if header_value(request, b"if-match") is not None:
            raise InvalidInput(
                [FieldError("If-Match", "If-Match applies to one task, not to clearing completed tasks")]
            )
        count_write(request)
        idempotency_key = _idempotency_key(request)

        async def write() -> Response[Any]:
            return JsonResponse(ClearedEnvelope(ClearedCount(await tasks.clear_completed(request.user))))

        return await _once(request, idempotency_key, write)


class TagsController(Controller):
    """`GET /api/tags`: the caller's tags with their counts."""

    path = "/api/tags"
    tags = ["Tasks"]
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="ListTags",
        operation_class=ApiOperation,
        summary="My tags, most used first",
        responses=error_responses(401, 503),
    )
    async def list_tags(
        self, request: Request[Caller, Any, Any], tasks: NamedDependency[TaskRepository]
    ) -> Response[TagsEnvelope]:
        """Each tag once, grouped case-insensitively and shown in the spelling most of its tasks use
        (between equally used spellings, the first in code-point order), with how many of the
        caller's tasks carry it; most used first, then by name."""
        return JsonResponse(TagsEnvelope(await tasks.tags(request.user)))
