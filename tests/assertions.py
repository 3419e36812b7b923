"""Checks shared by the robustness tests: the error envelope, and "nothing changed in the database"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    410: "CURSOR_EXPIRED",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`response` is exactly the contract's error envelope for `status` (with `code`, when the status
    has several); returns its `error` object."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == (code or ERROR_CODES[status]), error
    assert isinstance(error["message"], str) and error["message"], error
    if "details" in error:
        assert isinstance(error["details"], list) and error["details"], error
        for item in error["details"]:
            assert set(item) == {"field", "message"}, item
            assert isinstance(item["field"], str) and isinstance(item["message"], str), item
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1
    # Never internals: no traceback, SQL, or driver text.
    lowered = response.text.lower()
    for leak in ("traceback", "psycopg", "select ", "insert ", "update tasks", "sqlstate", 'file "'):
        assert leak not in lowered, response.text
    return error  # type: ignore[no-any-return]


def fingerprint(db: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """A digest of every row of `users` and `tasks`: equal digests, nothing changed."""
    row = db.execute(
        """
        SELECT (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM tasks t),
               (SELECT md5(coalesce(string_agg(u::text, '|' ORDER BY u.id), '')) FROM users u),
               (SELECT coalesce(max(id), 0) FROM tasks)
        """
    ).fetchone()
    assert row is not None
    return tuple(row)


@contextmanager
def nothing_changes(db: psycopg.Connection[Any]) -> Iterator[None]:
    """The block must leave the database exactly as it found it."""
    before = fingerprint(db)
    yield
    assert fingerprint(db) == before, "the database changed"
