"""uvicorn's httptools protocol with the connection limits uvicorn 0.54 lacks.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and nothing else on the
httptools path: no cap on the request head (httptools accumulates it, in quadratic time), no
deadline for a request's head or body, no deadline for a client to read what it asked for, no cap
on open sockets (its `limit_concurrency` looks at a connection only once a request's head has
arrived, and answers in plain text). Each method below adds one such bound; the README's
"Robustness" section lists them with their settings and measured effect.

The hot path (a whole request in one read, answered at once) costs one comparison per read, one
timer per request (as uvicorn's keep-alive timer) and one attribute check per response.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.http.shutdown import server_shutting_down

# Closing a socket that still has unread input makes the kernel send a reset, and a reset can
# destroy the answer before the client reads it. So after answering early (413, 431, 408...) the
# connection half-closes (FIN after the answer), then reads and discards what is in flight, at most
# this much for at most this long (nginx's "lingering close", bounded), and closes.
LINGER_BYTES = 1_048_576
LINGER_S = 2.0
# Deadlines bound how long a slow client holds memory, not how many do it at once: 300 sockets each
# sending a 1 MiB body but its last byte held 300 MB until their deadline. So each worker also caps
# the bytes it holds for clients at once: bodies of requests not yet received whole (beyond: 503 for
# the request that would pass the cap), and responses stuck because their client stopped reading
# (beyond: that connection is dropped at once instead of after HTTP_WRITE_TIMEOUT_S).
PENDING_BODY_BUDGET = 64 * 1_048_576
STALLED_WRITE_BUDGET = 64 * 1_048_576


class _Budget:
    """Bytes held across this worker's connections (one event loop per process: no lock needed)."""

    pending_bodies = 0
    stalled_writes = 0


class HttpLimits(msgspec.Struct, frozen=True):
    """The bounds, from `Settings` (picklable: uvicorn's worker processes receive them)."""

    max_head_bytes: int
    read_timeout_s: float
    write_timeout_s: float
    max_connections: int
    max_body_bytes: int


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools at once."""


class _BodyBudgetSpent(Exception):
    """Raised from a parser callback: this body would pass PENDING_BODY_BUDGET."""


def raw_error(status: int, message: str, *extra: bytes) -> bytes:
    """A complete `Connection: close` response with the envelope, for answers written below the app."""
    # Imported on use: app.errors imports the metrics, and the supervisor process of `WORKERS` > 1
    # (which loads this module to configure uvicorn, and serves nothing) must not become a metrics
    # process of its own (app/serve.py sets prometheus_client's multiprocess directory first).
    from app.errors import error_body

    body = error_body(status, message)
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\n",
            *extra,
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. uvicorn builds it through `functools.partial(..., limits=...)` (see serve.py)."""

    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # Between two requests, or inside a request's head: bytes of the head read so far.
        self._reading_head = True
        self._head_bytes = 0
        # The current request's read deadline (loop time), and one timer per connection that checks
        # it: re-arming a timer for every request cost more than the rest of this class together.
        self._read_deadline: float | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        # Lingering: bytes still to discard before closing (None: not lingering).
        self._discard: int | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        # This connection's share of the worker's budgets.
        self._pending_body = 0
        self._stalled = 0

    # --- open sockets --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Beyond the cap a socket is answered and closed before it can hold anything.
            self._reject(503, "Too many connections, retry shortly.", b"retry-after: 1\r\n")
            return
        # A socket that never sends a byte is idle too: uvicorn arms this timer only after a response.
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        for timer in (self._write_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._write_timer = self._linger_timer = None
        self._release_body()
        self._release_stalled()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # Before uvicorn lets this connection's response finish: event streams end now (see
        # app/http/shutdown.py), so they do not hold the process for the grace period.
        server_shutting_down(self.loop)
        super().shutdown()

    # --- the request head: size cap and read deadline --------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._discard is not None:
            self._discard -= len(data)
            if self._discard <= 0:
                self.transport.close()
            return
        if self._reading_head:
            if self._read_deadline is None:
                # The request's first bytes: its head and body must all arrive within the deadline.
                self._read_deadline = self.loop.time() + self.limits.read_timeout_s
                if self._read_timer is None:
                    self._read_timer = self.loop.call_at(self._read_deadline, self._check_read_deadline)
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._head_too_large()
            elif isinstance(exc.__context__, _BodyBudgetSpent):
                self._body_budget_spent()
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # Still inside the head after this read and past the cap: stop before httptools parses more
        # (its cost grows with the square of the head's size).
        if self._reading_head and self._head_bytes > self.limits.max_head_bytes:
            self._head_too_large()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        # The reads that carried this head may also carry body bytes: count the head itself, but
        # only when the reads were past the cap (the usual small request skips this loop).
        if self._head_bytes > self.limits.max_head_bytes:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self.limits.max_head_bytes:
                raise _HeadTooLarge
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        size = len(body)
        if _Budget.pending_bodies + size > PENDING_BODY_BUDGET:
            raise _BodyBudgetSpent
        _Budget.pending_bodies += size
        self._pending_body += size
        super().on_body(body)

    def _release_body(self) -> None:
        _Budget.pending_bodies -= self._pending_body
        self._pending_body = 0

    def _body_budget_spent(self) -> None:
        cycle = self.cycle
        cycle.disconnected = True  # the app, if waiting for this body, is told the client is gone
        cycle.message_event.set()
        if cycle.response_started:
            self._linger()
        else:
            self._reject(503, "The server is receiving too much at once, retry shortly.", b"retry-after: 1\r\n")

    def on_message_complete(self) -> None:
        self._read_deadline = None  # (its timer, if still armed, finds no deadline and lapses)
        if self._pending_body:
            self._release_body()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def _head_too_large(self) -> None:
        self._reject(431, "The request line and headers are too large.")

    # --- the request body: read deadline ---------------------------------------------------------
    def _check_read_deadline(self) -> None:
        self._read_timer = None
        if self._read_deadline is None or self.transport.is_closing():
            return  # the request it was armed for arrived whole
        now = self.loop.time()
        if now < self._read_deadline:  # armed for an earlier request: wait for this one's deadline
            self._read_timer = self.loop.call_at(self._read_deadline, self._check_read_deadline)
            return
        self._read_timed_out()

    def _read_timed_out(self) -> None:
        """The request's head or body did not arrive in time: 408 if nothing was answered, then close."""
        cycle = None if self._reading_head else self.cycle
        if cycle is not None:
            # The app, waiting for the body, is told the client is gone; its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        self._reject(408, "The request did not arrive in time.")

    def _cancel_read_timer(self) -> None:
        self._read_deadline = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def on_response_complete(self) -> None:
        # Answered before the request's body was read to its end. uvicorn would read and discard the
        # rest, however long (an endless chunked upload after its 413). Close (lingering) when the rest
        # is unbounded or beyond MAX_BODY_BYTES (every 413 is one of these); a declared small rest (a
        # 401 before the body arrived) is still read, within the read deadline, so that the kept-alive
        # connection the client will reuse is not cut under it.
        # (With requests queued behind it, the answered one was read whole: `self.cycle` is the last queued.)
        if not self.pipeline and self.cycle.more_body and not self.transport.is_closing() and self._rest_unbounded():
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()

    def _rest_unbounded(self) -> bool:
        for name, value in self.cycle.scope["headers"]:
            if name == b"content-length":
                return not value.isdigit() or int(value) > self.limits.max_body_bytes
        return True  # chunked

    # --- responses the client does not read: write deadline --------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.write_timeout_s, self._write_timed_out)
        self._release_stalled()
        self._stalled = self.transport.get_write_buffer_size()
        _Budget.stalled_writes += self._stalled
        if _Budget.stalled_writes > STALLED_WRITE_BUDGET:
            self.logger.info("Too many unread responses held: connection aborted.")
            self.transport.abort()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._release_stalled()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _release_stalled(self) -> None:
        _Budget.stalled_writes -= self._stalled
        self._stalled = 0

    def _write_timed_out(self) -> None:
        """The client stopped reading: drop the buffered response at once (close() would wait for it)."""
        self._write_timer = None
        self.logger.info("Response not read within %ss: connection aborted.", self.limits.write_timeout_s)
        self.transport.abort()

    # --- answering below the app, and closing ----------------------------------------------------
    def _reject(self, status: int, message: str, *extra: bytes) -> None:
        self.logger.info("%s %s Connection closed.", status, message)
        self.transport.write(raw_error(status, message, *extra))
        self._linger()

    def _linger(self) -> None:
        """Half-close after the answer, discard what is in flight (bounded, see LINGER_BYTES), close."""
        self._cancel_read_timer()
        self._release_body()
        self._unset_keepalive_if_required()
        self._discard = LINGER_BYTES
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_S, self.transport.close)
