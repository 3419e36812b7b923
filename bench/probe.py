"""The service with probes, or with automatic garbage collection off: `python -m bench.probe`.

Not product code: `bench/tail.py` runs it beside the unmodified service. With one worker uvicorn
serves in this very process, so what is set up here holds for the server:
- BENCH_PROBE_OUT=<file>: record every garbage collection's pause (gc.callbacks) and the event
  loop's lag (a task that sleeps 5 ms and measures how late it wakes up: anything that holds the
  loop, our code, a GC pause or the machine's other processes, shows there); written at exit.
- BENCH_GC=off: no automatic collections (gc.disable()).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import app.main
from app.serve import main

LAG_INTERVAL_S = 0.005

_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_lags: list[float] = []
_gc_started = 0.0
_create_app = app.main.create_app


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _pauses[info["generation"]].append(time.perf_counter() - _gc_started)


async def _watch_loop() -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(LAG_INTERVAL_S)
        _lags.append(time.perf_counter() - started - LAG_INTERVAL_S)


def _probed_app() -> Any:
    application = _create_app()
    watchers: set[asyncio.Task[None]] = set()

    async def start() -> None:
        watchers.add(asyncio.get_running_loop().create_task(_watch_loop()))

    application.on_startup.append(start)
    return application


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary() -> dict[str, Any]:
    gcs = {
        str(gen): {
            "count": len(p),
            "total_ms": sum(p) * 1000,
            "p99_ms": percentile(p, 0.99) * 1000,
            "max_ms": max(p, default=0.0) * 1000,
        }
        for gen, p in _pauses.items()
    }
    lag = {f"p{int(q * 100)}_ms": percentile(_lags, q) * 1000 for q in (0.5, 0.99)}
    return {"gc": gcs, "loop_lag": {**lag, "max_ms": max(_lags, default=0.0) * 1000, "samples": len(_lags)}}


if __name__ == "__main__":
    out = os.environ.get("BENCH_PROBE_OUT")
    if os.environ.get("BENCH_GC") == "off":
        gc.disable()
    if out:
        gc.callbacks.append(_on_gc)
        app.main.create_app = _probed_app  # type: ignore[assignment]  # uvicorn imports the factory by name, later
    status = main()
    if out:
        Path(out).write_text(json.dumps(summary()))
    raise SystemExit(status)
