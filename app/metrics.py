"""Prometheus metrics: what they are, the one-line calls other code makes, and the exposition.

With several worker processes (`WORKERS` > 1) each worker writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode, chosen when prometheus_client is
first imported: `app.serve` sets the directory up before any worker starts) and `/metrics` reads all
of them, whichever worker answers. Without that directory (tests in one process, `just dev`) the
values live in memory.

Calls other code makes (each is a dictionary lookup and an increment, cheap enough to make
whether or not `METRICS_ENABLED` lets anyone read them):
- `rejected("write_rate")`: a request refused by a limit (the label names the limit);
- `sign_in_failed("bad_credentials" | "locked_out")`;
- `with open_stream():` around the life of an event stream.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import REGISTRY

# In multiprocess mode prometheus_client asks `os.getpid()` on every increment (to notice a fork);
# here that system call was most of a request's metrics cost (3 per request, ~4 us each). The pid
# is kept instead, and renewed in a forked child, which is the case the check exists for.
_pid = os.getpid()


def _renew_pid() -> None:
    global _pid
    _pid = os.getpid()


def _process_id() -> int:
    return _pid


os.register_at_fork(after_in_child=_renew_pid)
if values.ValueClass is not values.MutexValue:  # multiprocess mode (PROMETHEUS_MULTIPROC_DIR was set)
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)  # type: ignore[no-untyped-call]

CONTENT_TYPE = CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by route template, method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
# Pool gauges: summed over the live workers (each has its own pool).
POOL_SIZE = Gauge("db_pool_size", "Open database connections.", multiprocess_mode="livesum")
POOL_IDLE = Gauge("db_pool_idle", "Open connections not in use.", multiprocess_mode="livesum")
POOL_WAITING = Gauge("db_pool_waiting", "Requests waiting for a connection.", multiprocess_mode="livesum")
POOL_MAX = Gauge("db_pool_max", "Largest pool size allowed (DB_POOL_MAX_SIZE per worker).", multiprocess_mode="livesum")
REJECTIONS = Counter("limit_rejections_total", "Requests refused by a limit (429, 413, 503), by limit.", ["limit"])
SIGN_IN_FAILURES = Counter("sign_in_failures_total", "Failed sign-ins, by reason.", ["reason"])
TOKEN_REJECTIONS = Counter("token_rejections_total", "Bearer tokens refused, by reason.", ["reason"])
OPEN_STREAMS = Gauge("event_streams_open", "Event streams currently open.", multiprocess_mode="livesum")

# Requests are tallied here in plain Python (a dict lookup and three additions) and handed to
# prometheus_client once a second and before each scrape (`flush_requests`): three increments of
# its values per request (each a lock and, across workers, a memory-mapped file write) cost more
# than the rest of the metrics and access log together. Workers' numbers are at most a second old.
_BOUNDS = (*LATENCY_BUCKETS, math.inf)
_tallies: dict[tuple[str, str, int], list[Any]] = {}
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    key = (route, method, status)
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = [0, 0.0, [0] * len(_BOUNDS)]
    tally[0] += 1
    tally[1] += seconds
    tally[2][bisect.bisect_left(_BOUNDS, seconds)] += 1


def flush_requests() -> None:
    """Hand the tallies to prometheus_client (event loop thread; once a second and on scrape)."""
    global _tallies
    tallies, _tallies = _tallies, {}
    for (route, method, status), (count, seconds, buckets) in tallies.items():
        children = _children.get((route, method, status))
        if children is None:
            # A client may send any method name: unknown ones share one label value.
            labels = (route, method if method in _KNOWN_METHODS else "OTHER", str(status))
            children = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
            if len(_children) < 10_000:
                _children[(route, method, status)] = children
        counter, histogram = children
        counter.inc(count)
        # Histogram.observe takes one value; these are its own stores, bucket by bucket.
        histogram._sum.inc(seconds)
        for index, hits in enumerate(buckets):
            if hits:
                histogram._buckets[index].inc(hits)


def rejected(limit: str) -> None:
    """A request refused by `limit` (e.g. "write_rate", "body_size", "pool_timeout")."""
    REJECTIONS.labels(limit).inc()


def sign_in_failed(reason: str) -> None:
    SIGN_IN_FAILURES.labels(reason).inc()


def token_rejected(reason: str) -> None:
    TOKEN_REJECTIONS.labels(reason).inc()


@contextlib.contextmanager
def open_stream() -> Iterator[None]:
    """Around the life of one event stream: `with metrics.open_stream(): ...`."""
    OPEN_STREAMS.inc()
    try:
        yield
    finally:
        OPEN_STREAMS.dec()


def observe_pool(stats: dict[str, int]) -> None:
    """The pool's current numbers (psycopg_pool's `get_stats()`)."""
    POOL_SIZE.set(stats.get("pool_size", 0))
    POOL_IDLE.set(stats.get("pool_available", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))
    POOL_MAX.set(stats.get("pool_max", 0))


def exposition(multiproc_dir: str | None) -> bytes:
    """The text format of every metric: all workers' files in multiprocess mode, else this process's."""
    if multiproc_dir is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(Path(multiproc_dir))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead_workers(directory: Path) -> None:
    """A worker that was killed (uvicorn starts another) cannot say it stopped: its live gauges
    (pool, streams) would still be summed. Its files name its pid; a pid that no longer runs is dead."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # it exists (someone else's): leave it


def worker_exited(multiproc_dir: str | None) -> None:
    """A worker stopping: its live gauges (pool, streams) no longer count."""
    if multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), multiproc_dir)  # type: ignore[no-untyped-call]
