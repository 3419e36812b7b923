"""Logging: one format for the whole process (`LOG_FORMAT` json or text), written off the event loop.

The standard library's `logging` with a small JSON formatter rather than structlog: the only
structured line on the hot path is the access line, and a plain `LogRecord` with a few attributes,
put on a queue and formatted by a background thread, costs the request less than a structlog
processor chain run in the request's own task (see README, "Operating it", for the figures).

What is never logged: request headers, bodies and query strings (so no token, password or secret);
log calls in this code base pass only ids, paths, statuses and exception types.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import queue
import sys
import threading
import time
from datetime import UTC, datetime
from logging.handlers import QueueHandler
from typing import Any, TextIO

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


class _Writer(threading.Thread):
    """Takes log records and batches of ready lines from one queue and writes whatever has
    accumulated with one `write` (one system call for many lines under load)."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.stream = stream
        self.formatter = formatter
        self.queue: queue.SimpleQueue[logging.LogRecord | list[str] | None] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            batch = [self.queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < MAX_BATCH:
                    batch.append(self.queue.get_nowait())
            lines: list[str] = []
            done = False
            for item in batch:
                if item is None:
                    done = True
                elif isinstance(item, list):
                    lines.extend(item)
                else:
                    try:
                        lines.append(self.formatter.format(item))
                    except Exception:  # a broken record must not stop the writer (logging's own policy)
                        lines.append(f"unformattable log record from {item.name}")
            if lines:
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
            if done:
                return

    def stop(self) -> None:
        self.queue.put(None)
        self.join(timeout=5)


MAX_BATCH = 1024
_writer: _Writer | None = None
_base_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = REQUEST_ID.get()
    return record


def configure_logging(level: str, log_format: str) -> None:
    """Route every logger to stderr through one queue and one writer thread, in `log_format`.

    Replaces the root logger's handlers (and a previous call's writer); other loggers keep theirs.
    """
    global _writer
    if _writer is None:
        atexit.register(stop_logging)
    logging.setLogRecordFactory(_record_with_request_id)
    logging.logProcesses = False  # os.getpid() per record: a system call, and never shown
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    if _writer is not None:
        _writer.stop()
    _writer = _Writer(sys.stderr, JsonFormatter() if log_format == "json" else TextFormatter())
    _writer.start()
    root.addHandler(_DeferredQueueHandler(_writer.queue))
    root.setLevel(level)


def write_lines(lines: list[str]) -> None:
    """Ready-made lines (access lines), written by the writer thread in order with the records."""
    if _writer is not None:
        _writer.queue.put(lines)
    else:
        sys.stderr.write("\n".join(lines) + "\n")


ACCESS_FLUSH_S = 0.05


class AccessLog:
    """One line per request, made in the request's task with one encode (no `LogRecord`, no
    handler chain) and handed to the writer thread in batches at most `ACCESS_FLUSH_S` old.

    Measured on this machine, going through `logging` cost several times more per request than
    this (README, "Operating it"). Same fields and format as the logger `app.access` would give.
    """

    def __init__(self, log_format: str) -> None:
        self.json = log_format == "json"
        self._pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def _time(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # formatting a date once per second, not per request
            self._second = second
            if self.json:
                self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        return f"{self._stamp}.{millis:03d}+00:00" if self.json else f"{self._stamp},{millis:03d}"

    def log(
        self, method: str, route: str, path: str, status: int, duration_ms: float, client: str | None, request_id: Any
    ) -> None:
        stamp = self._time(time.time())
        message = f"{method} {path} {status} {duration_ms:.2f} ms"
        if self.json:
            line = _json.encode(
                {
                    "time": stamp,
                    "level": "INFO",
                    "logger": "app.access",
                    "message": message,
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "client": client,
                }
            ).decode()
        else:
            line = f"INFO - {stamp} - app.access - {message} [request {request_id}]"
        if not self._pending:
            asyncio.get_running_loop().call_later(ACCESS_FLUSH_S, self.flush)
        self._pending.append(line)

    def flush(self) -> None:
        if self._pending:
            lines, self._pending = self._pending, []
            write_lines(lines)


def stop_logging() -> None:
    """Write what is queued (at shutdown)."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None
