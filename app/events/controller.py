"""`GET /api/events` (live updates as server-sent events) and `POST /api/events/ticket`."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.enums import ParamType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import Parameter
from litestar.response import Stream

from app.auth.tokens import Caller
from app.body import ApiOperation, documented_headers, header_value
from app.edge import HEAD_REQUEST
from app.errors import error_responses
from app.events.streams import StreamHub
from app.events.tickets import MAX_TICKET_CHARS, TICKET_TTL_S, Tickets
from app.responses import JsonResponse
from app.sync.changes import Cursor
from app.tasks.controller import count_write

# The browser's EventSource sends it when it reconnects: the `id` of the last event it received.
LAST_EVENT_ID = OpenAPIParameter(
    name="Last-Event-ID",
    param_in=ParamType.HEADER,
    schema=Schema(type=OpenAPIType.STRING, max_length=4096),
    description="Resume after this event (its `id`); wins over `since`.",
)
Since = Annotated[
    str | None,
    Parameter(
        max_length=4096,
        description="Resume after this cursor (an event's `id`, or the changes feed's `meta.cursor`); "
        "absent: from now on.",
    ),
]
_STREAM = ResponseSpec(
    data_container=str,
    media_type="text/event-stream",
    description=(
        "A `text/event-stream` that stays open. Each change: `id: <cursor>`, `event: change`, "
        "`data: <Change as JSON>` (as in the changes feed). It begins with `id:` alone (where it "
        "starts); a comment line (`:`) every EVENTS_HEARTBEAT_S."
    ),
    generate_examples=False,
)
# Proxies (nginx) pass the stream on as it comes instead of buffering it.
_STREAM_HEADERS = {"X-Accel-Buffering": "no"}  # (Cache-Control: no-store comes from the edge)


class Ticket(msgspec.Struct, frozen=True):
    ticket: str
    expires_in: int


class TicketEnvelope(msgspec.Struct, frozen=True):
    data: Ticket


class EventsController(Controller):
    path = "/api/events"
    tags = ["Sync"]
    security = [{"BearerAuth": []}]

    @get(
        "/",
        operation_id="StreamEvents",
        operation_class=documented_headers(ApiOperation, LAST_EVENT_ID),
        summary="Live changes of my tasks (server-sent events)",
        media_type="text/event-stream",
        responses={200: _STREAM, **error_responses(401, 410, 422, 429, 503)},
        opt={"ticket_auth": True},
    )
    async def stream_events(
        self,
        request: Request[Caller, Any, Any],
        streams: NamedDependency[StreamHub],
        since: Since = None,
        ticket: Annotated[
            str | None,
            Parameter(
                max_length=MAX_TICKET_CHARS,
                description="Instead of the Authorization header (EventSource): a ticket from "
                "`POST /api/events/ticket`, single use, 60 s.",
            ),
        ] = None,
    ) -> Stream:
        """Every change of the caller's tasks, made through any worker or instance, within a second.
        Without `Last-Event-ID` or `since`, from now on; with one, from there, with nothing missed
        (410 when it is too old: start again from a snapshot of `GET /api/tasks/changes`). At most
        EVENTS_MAX_STREAMS_PER_USER open streams per user (429 with Retry-After)."""
        resume = header_value(request, b"last-event-id") or since
        cursor = None if resume is None else Cursor.decode(resume)
        if request.scope.get(HEAD_REQUEST):  # the headers of the stream, and no stream
            return Stream((), media_type="text/event-stream", headers=_STREAM_HEADERS)
        stream = await streams.open(request.user)
        try:
            start, first = await streams.first_page(stream, cursor)
        except BaseException:
            streams.close(stream)
            raise
        return Stream(
            streams.events(stream, start, first),
            media_type="text/event-stream",
            headers=_STREAM_HEADERS,
            # Also when the client left while the stream waited to send (the body may never finish).
            background=BackgroundTask(streams.release, stream),
        )

    @post(
        "/ticket",
        operation_id="CreateEventsTicket",
        operation_class=ApiOperation,
        summary="A ticket for opening the event stream from a browser",
        response_description="The ticket, and for how many seconds it can be used.",
        responses=error_responses(401, 429, 503),
    )
    async def create_ticket(
        self, request: Request[Caller, Any, Any], tickets: NamedDependency[Tickets]
    ) -> Response[TicketEnvelope]:
        """For `GET /api/events?ticket=` (the browser's EventSource cannot send headers): single use,
        for this caller, within `expires_in` seconds. Counts as a write (WRITE_RATE_PER_MIN)."""
        count_write(request)
        ticket = await tickets.issue(request.user)
        return JsonResponse(TicketEnvelope(Ticket(ticket, TICKET_TTL_S)), status_code=201)
