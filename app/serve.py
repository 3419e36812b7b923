"""Production-like server (`just serve`): uvicorn with HOST/PORT/WORKERS; refuses development defaults.

It does not migrate: run `just migrate` as its own deployment step.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from app.config import ConfigError, Settings
from app.logs import configure_logging

GRACEFUL_SHUTDOWN_S = 10


def main() -> int:
    try:
        settings = Settings.from_env()
        settings.require_production()
    except ConfigError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully, so the process would end
    # "killed by SIGTERM" (status 143) after an orderly stop. Catch the re-raised signal: exit 0.
    # (uvicorn installs its own handlers while serving; these only see the re-raised signal.)
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: None)
    settings = _production_logging(settings)
    configure_logging(settings.log_level, settings.log_format or "json")
    metrics_dir = _metrics_dir(settings)
    try:
        run_uvicorn("app.main:create_app", settings, log_config=None)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _production_logging(settings: Settings) -> Settings:
    """JSON logs unless LOG_FORMAT says otherwise; workers read it from the environment they inherit."""
    if settings.log_format is None:
        os.environ["LOG_FORMAT"] = "json"
        return settings.with_(log_format="json")
    return settings


def _metrics_dir(settings: Settings) -> Path | None:
    """prometheus_client's multiprocess directory, emptied, set in the environment before any worker
    (or, with one worker, this process) imports prometheus_client. Returns it when it is ours to remove.

    Files left by a previous run would be added to this run's counts: a given directory is emptied.
    """
    if not settings.metrics_enabled:
        return None
    if settings.prometheus_multiproc_dir is not None:
        directory, ours = Path(settings.prometheus_multiproc_dir), False
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory, ours = Path(tempfile.mkdtemp(prefix="tasks-api-metrics-")), True
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory if ours else None


def run_uvicorn(factory: str, settings: Settings, **overrides: Any) -> None:
    """uvicorn as production runs it (the benchmark's reference app runs under the very same)."""
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        # In-flight requests finish on SIGTERM, within a bound.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **overrides,
    )


if __name__ == "__main__":
    raise SystemExit(main())
