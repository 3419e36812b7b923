"""Production-like server (`just serve`): uvicorn with HOST/PORT/WORKERS; refuses development defaults.

It does not migrate: run `just migrate` as its own deployment step.
"""

from __future__ import annotations

import signal
import sys

import uvicorn

from app.config import ConfigError, Settings

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
    run_uvicorn("app.main:create_app", settings)
    return 0


def run_uvicorn(factory: str, settings: Settings) -> None:
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
    )


if __name__ == "__main__":
    raise SystemExit(main())
