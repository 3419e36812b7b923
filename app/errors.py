"""The error envelope and the one place where every exception becomes a response.

Every layer (routing, auth, validation, body parsing, database, crashes) raises; nothing formats
its own error. `EXCEPTION_HANDLERS` maps each exception family to
`{"error": {"code", "message", "details"?}}` with the right status and headers, and makes sure no
traceback, SQL text, driver message or secret reaches a client.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import psycopg
import psycopg_pool
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from app import metrics

logger = logging.getLogger("app.errors")

RETRY_AFTER_S = "1"
# Scope key the edge sets when the client went away before its request was read whole.
CLIENT_GONE = "client_gone"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: list[FieldError] | None = None


class ErrorResponse(msgspec.Struct):
    """`{"error": {...}}`: the shape of every error response."""

    error: ErrorBody


_CODES: dict[int, str] = {
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

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "The request body is not valid JSON.",
    401: "Authentication required.",
    404: "Not found.",
    405: "Method not allowed.",
    408: "The request did not arrive in time.",
    409: "Conflict.",
    410: "The cursor has expired; start again without it.",
    412: "The task has changed since you read it; read it again.",
    413: "The request body is too large.",
    415: "Content-Type must be application/json.",
    422: "The request is not valid.",
    429: "Too many requests.",
    431: "The request line and headers are too large.",
    500: "Internal server error.",
    503: "The service is temporarily unavailable, retry shortly.",
}


class ApiError(Exception):
    """An error the service raises on purpose, already in the contract's terms."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        details: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        limit: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        # The limit that refused the request (429, 413, 503, quota): counted in limit_rejections_total.
        self.limit = limit
        self.message = message or _DEFAULT_MESSAGES.get(status, "Error.")
        self.details = list(details) if details else None
        self.headers = dict(headers) if headers else None
        super().__init__(self.message)


class NotFound(ApiError):
    def __init__(self, message: str = "Task not found.") -> None:
        super().__init__(404, message)


class InvalidInput(ApiError):
    """422 with one entry per offending field; the message names the first one and its rule."""

    def __init__(self, details: Sequence[FieldError], message: str | None = None) -> None:
        super().__init__(422, message or validation_message(details), details=details)


# A 422's `message` is shown to people (the seed frontend displays `error.message`): it names the
# first offending field and its rule in plain words. `details` keep the decoder's own wording.
_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "a JSON boolean (true or false)",
    "object": "a JSON object",
    "array": "a JSON array",
    "null": "null",
}
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Expected `\w+` >= (?P<n>\S+)$"), "{field} must be at least {n}"),
    (re.compile(r"^Expected `\w+` <= (?P<n>\S+)$"), "{field} must be at most {n}"),
    (re.compile(r"^Expected `str` of length >= (?P<n>\d+)$"), "{field} must be at least {n} characters"),
    (re.compile(r"^Expected `str` of length <= (?P<n>\d+)$"), "{field} must be at most {n} characters"),
    (re.compile(r"^Expected `str` matching regex .*$", re.DOTALL), "{field} is not in the accepted format"),
    (re.compile(r"^Invalid enum value .*$", re.DOTALL), "{field} is not one of the accepted values"),
    (re.compile(r"^Expected `(?P<type>\w+)(?: \| \w+)*`, got `\w+`$"), "{field} must be {type}"),
)


def plain_rule(field: str, message: str) -> str:
    """`message` (msgspec's or Litestar's, or already ours) as "<field> must ..."."""
    if message.startswith(f"{field} "):
        return message
    subject = "the request body" if field == "body" else field
    for pattern, template in _RULES:
        if match := pattern.match(message):
            values = match.groupdict()
            if "type" in values:
                values["type"] = _TYPE_NAMES.get(values["type"], f"of type {values['type']}")
            return template.format(field=subject, **values)
    return f"{subject}: {message}"


def validation_message(details: Sequence[FieldError] | None) -> str:
    if not details:
        return _DEFAULT_MESSAGES[422]
    return plain_rule(details[0].field, details[0].message)


class PreconditionFailed(ApiError):
    """412: `If-Match` named a version the task no longer has; `details` stays empty (re-read it)."""

    def __init__(self) -> None:
        super().__init__(412)


class ServiceUnavailable(ApiError):
    def __init__(self, message: str | None = None, *, limit: str | None = None) -> None:
        super().__init__(503, message, headers={"Retry-After": RETRY_AFTER_S}, limit=limit)


class RateLimited(ApiError):
    """429 with `Retry-After` in whole seconds (at least 1)."""

    def __init__(self, message: str, retry_after_s: float, *, limit: str) -> None:
        headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}
        super().__init__(429, message, headers=headers, limit=limit)


class QuotaExceeded(ApiError):
    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(409, message, code="QUOTA_EXCEEDED", limit=limit)


_encoder = msgspec.json.Encoder()


def error_body(
    status: int, message: str | None = None, details: Sequence[FieldError] | None = None, code: str | None = None
) -> bytes:
    """The encoded envelope for `status` (`code`: a more specific code than the status's own); also
    used by the ASGI edge, outside Litestar."""
    return _encoder.encode(
        ErrorResponse(
            ErrorBody(
                code=code or _CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"),
                message=message or _DEFAULT_MESSAGES.get(status, "Error."),
                details=list(details) if details else None,
            )
        )
    )


def error_response(
    status: int,
    message: str | None = None,
    *,
    details: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
) -> Response[bytes]:
    return Response(
        content=error_body(status, message, details, code),
        status_code=status,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )


def _request_id(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("request_id", "-"))


def log_server_error(request: Request[Any, Any, Any], status: int, exc: BaseException) -> None:
    """Every 5xx is logged once, here: method, path (no query string), status, request id, traceback.

    Nothing from the request's headers or body is logged, so no token or password reaches the logs.
    """
    logger.log(
        logging.ERROR if status == 500 else logging.WARNING,
        "%s %s answered %s (request %s): %s",
        request.method,
        request.url.path,
        status,
        _request_id(request),
        type(exc).__name__,
        exc_info=exc,
    )


def handle_api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    if exc.limit is not None:
        metrics.rejected(exc.limit)
    if exc.status >= 500:
        log_server_error(request, exc.status, exc)
    return error_response(exc.status, exc.message, details=exc.details, headers=exc.headers, code=exc.code)


# "Expected `str`, got `int` - at `$.title`" -> field "title"; "$" alone is the whole body.
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")


def field_error_from_msgspec(exc: msgspec.ValidationError) -> FieldError:
    """Turn msgspec's one-line message into `{"field", "message"}`."""
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None  # the pattern matches any string
    path = (match["path"] or "").lstrip(".")
    if missing := _MISSING_FIELD.match(match["msg"]):
        field = f"{path}.{missing['name']}" if path else missing["name"]
        return FieldError(field=field, message=f"{missing['name']} is required")
    return FieldError(field=path or "body", message=match["msg"])


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors: routing 404/405, body too large, malformed JSON, parameter validation."""
    headers = dict(exc.headers) if exc.headers else None
    status = exc.status_code
    if status >= 500 and request.scope.get(CLIENT_GONE):
        # Litestar reports a body cut short by a disconnect as a 500. Nobody is there to answer and
        # nothing failed on our side: one line at INFO, no traceback (a client repeating it must not
        # fill the logs), and a 4xx status for whatever counts statuses.
        logger.info(
            "%s %s: client disconnected before its request was complete (request %s)",
            request.method,
            request.url.path,
            _request_id(request),
        )
        return error_response(400, "The client disconnected before its request was complete.")
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        # Litestar answers parameter validation with 400; the contract says 422 with details.
        details = [
            FieldError(field=str(item.get("key") or "request"), message=str(item.get("message", "invalid")))
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        message = _parameter_rule(request, details[0].field) if details else None
        return error_response(422, message or validation_message(details), details=details or None, headers=headers)
    if status >= 500:
        status = 503 if status == 503 else 500
        log_server_error(request, status, exc)
        if status == 503:
            headers = {"Retry-After": RETRY_AFTER_S, **(headers or {})}
        return error_response(status, headers=headers)
    if status == 413:
        metrics.rejected("body_size")
    if status == 400:
        message = _DEFAULT_MESSAGES[400]
    elif status in (404, 405):
        message = _DEFAULT_MESSAGES[status]
    else:
        message = None
    return error_response(status, message, headers=headers)


# Bounds this large are "any id", not worth a reader's attention.
_NO_UPPER_BOUND = 2**53


def _parameter_rule(request: Request[Any, Any, Any], name: str) -> str | None:
    """The rule of query/path parameter `name` as its handler declares it (bounds, accepted values)."""
    handler = request.scope.get("route_handler")
    parameter = getattr(getattr(handler, "parsed_fn_signature", None), "parameters", {}).get(name)
    if parameter is None:
        return None
    constraint = parameter.kwarg_definition
    low, high = getattr(constraint, "ge", None), getattr(constraint, "le", None)
    if low is not None and high is not None and high < _NO_UPPER_BOUND:
        return f"{name} must be an integer between {low} and {high}"
    if low is not None:
        return f"{name} must be an integer of at least {low}"
    choices = [str(v) for v in _literal_values(parameter)]
    if choices:
        return f"{name} must be one of: {', '.join(choices)}"
    return None


def _literal_values(parameter: Any) -> list[Any]:
    """The values of a `Literal[...]` parameter (also inside `Optional`)."""
    if parameter.is_literal:
        return list(parameter.args)
    for inner in parameter.inner_types:
        if inner.is_literal:
            return list(inner.args)
    return []


def handle_database_error(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response[bytes]:
    """Unreachable database, exhausted pool, statement timeout -> 503; never the driver's text."""
    if isinstance(exc, psycopg.DataError):
        # Input validation keeps bad data away from SQL; if something slips through it is still the
        # client's data, so answer 422 rather than blame the server.
        logger.warning("data error on %s (request %s): %s", request.url.path, _request_id(request), type(exc))
        return error_response(422, "A value is not acceptable.")
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout | psycopg.InterfaceError):
        if isinstance(exc, psycopg_pool.PoolTimeout):
            metrics.rejected("db_pool")  # DB_POOL_TIMEOUT_S passed with every connection busy
        elif isinstance(exc, psycopg.errors.QueryCanceled):
            metrics.rejected("statement_timeout")
        log_server_error(request, 503, exc)
        return error_response(503, headers={"Retry-After": RETRY_AFTER_S})
    return handle_crash(request, exc)


def handle_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log_server_error(request, 500, exc)
    return error_response(500)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    psycopg.Error: handle_database_error,
    psycopg_pool.PoolTimeout: handle_database_error,
    Exception: handle_crash,
}


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a handler can answer with, all with the envelope."""
    return {
        status: ResponseSpec(
            data_container=ErrorResponse,
            description=f"{_CODES[status]}: {_DEFAULT_MESSAGES[status]}",
            generate_examples=False,
        )
        for status in statuses
    }
