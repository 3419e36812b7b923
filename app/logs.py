"""Logging: one format for the whole process (`LOG_FORMAT` json or text), written off the event loop.

The standard library's `logging` with a small JSON formatter rather than structlog: the only
structured line on the hot path is the access line, and a plain `LogRecord` with a few attributes,
put on a queue and formatted by a background thread, costs the request less than a structlog
processor chain run in the request's own task (see README, "Operating it", for the figures).

What is never logged: request headers, bodies and query strings (so no token, password or secret);
log calls in this code base pass only ids, paths, statuses and exception types.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

import msgspec

# The request being served, for every line logged while serving it (set by app.observability).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

TEXT_FORMAT = "%(levelname)s - %(asctime)s - %(name)s - %(message)s"
# Attributes an access line (or any line, via `extra=`) may carry into its JSON object.
_FIELDS = ("method", "route", "path", "status", "duration_ms", "client", "reason")

_json = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and the fields above."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _json.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the request id appended when there is one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id is not None and request_id not in line:
            head, sep, tail = line.partition("\n")
            line = f"{head} [request {request_id}]{sep}{tail}"
        return line


class _DeferredQueueHandler(QueueHandler):
    """Hands records to the writer thread unformatted: the formatting (JSON encoding, tracebacks)
    happens there, not in the request's task. The message's arguments are merged here, while they
    still hold the values of the moment."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.msg = record.getMessage()
        record.args = None
        return record


_listener: QueueListener | None = None
_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    return record


def configure_logging(level: str, log_format: str) -> None:
    """Route every logger to stderr through one queue and one writer thread, in `log_format`.

    Replaces the root logger's handlers (and a previous call's writer); other loggers keep theirs.
    """
    global _listener
    if _listener is None:
        atexit.register(stop_logging)
    logging.setLogRecordFactory(_record_with_request_id)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    if _listener is not None:
        _listener.stop()
    _listener = QueueListener(records, stream, respect_handler_level=False)
    _listener.start()
    root.addHandler(_DeferredQueueHandler(records))
    root.setLevel(level)


def stop_logging() -> None:
    """Flush what is queued (at shutdown)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
