"""Liveness and readiness probes (public)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.datastructures import State

from app.db import DatabaseProbe
from app.errors import ServiceUnavailable, error_responses

READY_TIMEOUT_S = 2.0  # a database slower than this to say SELECT 1 is not ready


class HealthStatus(msgspec.Struct, frozen=True):
    status: str


_OK = HealthStatus("ok")


class HealthController(Controller):
    path = "/health"
    tags = ["Operations"]

    @get("/", operation_id="Health", summary="Liveness (no database)", exclude_from_auth=True)
    async def health(self) -> HealthStatus:
        return _OK

    @get(
        "/ready",
        operation_id="Readiness",
        summary="Readiness: the database answers within a short timeout",
        exclude_from_auth=True,
        responses=error_responses(503),
    )
    async def ready(self, state: State) -> HealthStatus:
        probe: DatabaseProbe = state.probe
        try:
            await probe.ping()
        except Exception as exc:  # any failure to answer is "not ready"; logged with its cause (errors.py)
            raise ServiceUnavailable("The database is not reachable.") from exc
        return _OK
