"""The server's shutdown, told to the app before uvicorn waits for responses to finish.

uvicorn's graceful shutdown stops accepting, asks each connection to close after its response, waits
for the responses (up to the grace period), and only then runs the app's lifespan shutdown. A
response that never ends by itself (an event stream) would hold the process for the whole grace
period, then be cancelled. So the protocol (app/http/protocol.py) calls `server_shutting_down` when
the shutdown begins, and what registered with `on_server_shutdown` ends its streams at once, while
ordinary requests finish as before.

Keyed by event loop: one uvicorn server per loop (one per worker process; the tests run several
servers, each in its own thread and loop, in one process).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from weakref import WeakKeyDictionary

_callbacks: WeakKeyDictionary[asyncio.AbstractEventLoop, list[Callable[[], None]]] = WeakKeyDictionary()


def on_server_shutdown(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` when the server of the running loop begins to shut down; returns the undo."""
    callbacks = _callbacks.setdefault(asyncio.get_running_loop(), [])
    callbacks.append(callback)
    return lambda: callbacks.remove(callback) if callback in callbacks else None


def server_shutting_down(loop: asyncio.AbstractEventLoop) -> None:
    """The server on `loop` is shutting down (called once per open connection: callbacks are idempotent)."""
    for callback in list(_callbacks.get(loop, ())):
        callback()
