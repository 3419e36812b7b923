"""`GET /api/tasks/changes`: the delta-sync feed (see app/sync/changes.py for why it is exact)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from app.auth.tokens import Caller
from app.body import ApiOperation
from app.errors import error_responses
from app.responses import JsonResponse
from app.sync.changes import ChangeFeed, ChangesEnvelope, ChangesMeta, Cursor

Since = Annotated[
    str | None,
    Parameter(
        max_length=4096,
        description="`meta.cursor` of the previous page; absent: a snapshot of every task first.",
    ),
]


class ChangesController(Controller):
    path = "/api/tasks/changes"
    tags = ["Sync"]
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="ListTaskChanges",
        operation_class=ApiOperation,
        summary="What changed in my tasks since a cursor",
        responses=error_responses(401, 410, 422, 503),
    )
    async def list_changes(
        self,
        request: Request[Caller, Any, Any],
        changes: NamedDependency[ChangeFeed],
        since: Since = None,
        limit: Annotated[
            int, Parameter(ge=1, le=1000, description="Page size.", schema_extra={"minimum": 1, "maximum": 1000})
        ] = 500,
    ) -> Response[ChangesEnvelope]:
        """Without `since`: every current task as an upsert (paged). Then, with `since=meta.cursor`:
        `{"op": "upsert", "task"}` and `{"op": "delete", "id"}` oldest first; ask again while
        `has_more`. A client that applies every page holds exactly the server's tasks. 410: the
        cursor is too old (deletions are kept SYNC_TOMBSTONE_TTL_S) or unknown: start again."""
        page = await changes.page(request.user, None if since is None else Cursor.decode(since), limit)
        envelope = ChangesEnvelope(
            data=[change for _, change in page.changes],
            meta=ChangesMeta(cursor=page.cursor.encode(), has_more=page.has_more),
        )
        return JsonResponse(envelope)
