"""`/api/tasks`: the six task endpoints. Validation here, SQL in the repository, isolation in SQL."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.params import Parameter

from app.auth.tokens import Caller
from app.body import ApiOperation, documented_body, read_json
from app.errors import NotFound, QuotaExceeded, RateLimited, error_responses
from app.rate_limit import ConcurrencyLimit, RateLimiter
from app.responses import JsonResponse
from app.tasks.repository import TaskRepository
from app.tasks.schemas import (
    FIELD_RULES,
    CompletionChange,
    ListMeta,
    TaskCreate,
    TaskEnvelope,
    TaskListEnvelope,
    TaskSort,
    TaskStatus,
    TaskUpdate,
)

MAX_ID = 2**63 - 1  # ids are bigint; anything larger cannot exist
Q_MAX_CHARS = 200
_TOGGLE = CompletionChange()

TaskId = Annotated[int, Parameter(description="The task's id (a positive integer).")]


def _bounded(low: int, high: int, description: str) -> Any:
    """An integer query parameter in [low, high], documented exactly: Litestar writes `ge`/`le` as
    floats, and 2**63 - 1 as a float is 2**63, a value the API rejects.
    """
    return Parameter(ge=low, le=high, description=description, schema_extra={"minimum": low, "maximum": high})


def _count_write(write_rate: RateLimiter, caller: Caller) -> None:
    """WRITE_RATE_PER_MIN, per user and per worker process: 429 before the request does anything."""
    wait = write_rate.take(caller.id)
    if wait is not None:
        raise RateLimited("Too many task changes; retry later.", wait)


def _existing_id(task_id: int) -> int:
    """Ids that cannot exist are simply not found (and never reach SQL as an out-of-range bigint)."""
    if not 0 < task_id <= MAX_ID:
        raise NotFound()
    return task_id


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
        operation_class=ApiOperation,
        summary="List my tasks",
        responses=error_responses(400, 401, 422, 429, 503),
    )
    async def list_tasks(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        searches: NamedDependency[ConcurrencyLimit],
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
        offset: Annotated[int, _bounded(0, MAX_ID, "Tasks to skip.")] = 0,
    ) -> Response[TaskListEnvelope]:
        """Newest first by default; ties broken by id. `completed` and `status` together must both hold."""
        by_param = None if completed is None else completed == "true"
        by_status = _STATUS_COMPLETED[status]
        if by_param is not None and by_status is not None and by_param != by_status:
            # Both filters must hold, and together they hold for no task: an empty page, not an error.
            return JsonResponse(TaskListEnvelope(data=[], meta=ListMeta(total=0, limit=limit, offset=offset)))
        want = by_param if by_param is not None else by_status
        if q:
            async with searches.hold(request.user.id):
                rows, total = await tasks.list(request.user, completed=want, q=q, sort=sort, limit=limit, offset=offset)
        else:
            rows, total = await tasks.list(request.user, completed=want, q=q, sort=sort, limit=limit, offset=offset)
        return JsonResponse(TaskListEnvelope(data=rows, meta=ListMeta(total=total, limit=limit, offset=offset)))

    @post(
        "/",
        operation_id="CreateTask",
        summary="Create a task",
        operation_class=documented_body(TaskCreate),
        responses=error_responses(400, 401, 409, 413, 415, 422, 429, 503),
        response_headers=[
            ResponseHeader(
                name="Location",
                value="/api/tasks/{id}",  # documentation only: gives the header its string schema
                description="The new task's URL.",
                required=True,
                documentation_only=True,
            )
        ],
    )
    async def create_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        write_rate: NamedDependency[RateLimiter],
    ) -> Response[TaskEnvelope]:
        """409 `QUOTA_EXCEEDED` when the caller already has TASKS_MAX_PER_USER tasks."""
        _count_write(write_rate, request.user)
        data = await read_json(request, TaskCreate, field_rules=FIELD_RULES)
        task = await tasks.create(request.user, data)
        if task is None:
            raise QuotaExceeded(f"You have reached the limit of {tasks.max_tasks} tasks; delete some first.")
        return JsonResponse(TaskEnvelope(task), status_code=201, headers={"Location": f"/api/tasks/{task.id}"})

    @get(
        "/{task_id:int}",
        operation_id="GetTask",
        operation_class=ApiOperation,
        summary="Get one of my tasks",
        responses=error_responses(401, 404, 503),
    )
    async def get_task(
        self, request: Request[Caller, Any, Any], tasks: NamedDependency[TaskRepository], task_id: TaskId
    ) -> Response[TaskEnvelope]:
        task = await tasks.get(request.user, _existing_id(task_id))
        if task is None:
            raise NotFound()
        return JsonResponse(TaskEnvelope(task))

    @put(
        "/{task_id:int}",
        operation_id="UpdateTask",
        summary="Replace a task's fields",
        operation_class=documented_body(TaskUpdate),
        responses=error_responses(400, 401, 404, 413, 415, 422, 429, 503),
    )
    async def update_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        write_rate: NamedDependency[RateLimiter],
        task_id: TaskId,
    ) -> Response[TaskEnvelope]:
        """`title` required; omitted `description`/`completed` are kept; `"description": null` clears it."""
        task_id = _existing_id(task_id)
        _count_write(write_rate, request.user)
        data = await read_json(request, TaskUpdate, field_rules=FIELD_RULES)
        task = await tasks.update(request.user, task_id, data)
        if task is None:
            raise NotFound()
        return JsonResponse(TaskEnvelope(task))

    @delete(
        "/{task_id:int}",
        operation_id="DeleteTask",
        operation_class=ApiOperation,
        summary="Delete a task",
        status_code=204,
        responses=error_responses(401, 404, 429, 503),
    )
    async def delete_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        write_rate: NamedDependency[RateLimiter],
        task_id: TaskId,
    ) -> None:
        task_id = _existing_id(task_id)
        _count_write(write_rate, request.user)
        if not await tasks.delete(request.user, task_id):
            raise NotFound()

    @patch(
        "/{task_id:int}/complete",
        operation_id="CompleteTask",
        summary="Toggle, or set, a task's completion",
        operation_class=documented_body(CompletionChange, required=False, nullable=True),
        responses=error_responses(400, 401, 404, 413, 415, 422, 429, 503),
    )
    async def complete_task(
        self,
        request: Request[Caller, Any, Any],
        tasks: NamedDependency[TaskRepository],
        write_rate: NamedDependency[RateLimiter],
        task_id: TaskId,
    ) -> Response[TaskEnvelope]:
        """No body, an empty body, `{}` or `null` toggles atomically; `{"completed": bool}` sets it."""
        task_id = _existing_id(task_id)
        _count_write(write_rate, request.user)
        change = await read_json(request, CompletionChange | None, field_rules=FIELD_RULES, empty=_TOGGLE)  # type: ignore[arg-type]
        if change is None or not isinstance(change.completed, bool):
            task = await tasks.toggle_completed(request.user, task_id)
        else:
            task = await tasks.set_completed(request.user, task_id, change.completed)
        if task is None:
            raise NotFound()
        return JsonResponse(TaskEnvelope(task))
