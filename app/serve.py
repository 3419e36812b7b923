"""Production-like server (`just serve`): uvicorn with HOST/PORT/WORKERS; refuses development defaults.

It does not migrate: run `just migrate` as its own deployment step.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.config import ConfigError, Settings
from app.logs import configure_logging

if TYPE_CHECKING:
    from app.http.protocol import HttpLimits

GRACEFUL_SHUTDOWN_S = 10
# File descriptors a worker needs beside its client sockets (pool connections, logs, imports).
SPARE_FDS = 100

logger = logging.getLogger("app")


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


def uvicorn_config(app: str | Callable[..., Any], settings: Settings, **overrides: object) -> uvicorn.Config:
    """uvicorn as production runs it: `just serve`, the benchmark's reference app and the tests'
    live servers all get this very configuration (`overrides`: the tests' port and log level)."""
    # Imported here, not at the top, so that importing this module never imports prometheus_client
    # (which picks its multiprocess mode once, at import, from PROMETHEUS_MULTIPROC_DIR, set by main()).
    from app.http.protocol import LimitedHttpToolsProtocol

    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "loop": "uvloop",
        # httptools, with the limits uvicorn lacks (app/http/protocol.py); a partial pickles, so
        # worker processes get the same limits.
        "http": functools.partial(LimitedHttpToolsProtocol, limits=http_limits(settings)),
        "log_level": settings.log_level.lower(),
        "access_log": False,
        # In-flight requests finish on SIGTERM, within a bound.
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "timeout_keep_alive": settings.http_idle_timeout_s,
        # X-Forwarded-For is believed only from the listed proxies; without any, proxy headers are
        # ignored entirely (uvicorn's default trusts 127.0.0.1: any local peer could forge its address).
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "factory": isinstance(app, str),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]  # options typed per key by uvicorn


def http_limits(settings: Settings) -> HttpLimits:
    from app.http.protocol import HttpLimits  # see uvicorn_config

    return HttpLimits(
        max_head_bytes=settings.http_max_header_bytes,
        read_timeout_s=settings.http_read_timeout_s,
        write_timeout_s=settings.http_write_timeout_s,
        max_connections=settings.http_max_connections,
        max_body_bytes=settings.max_body_bytes,
    )


def raise_fd_limit(needed: int) -> None:
    """Lift the soft open-files limit toward the hard one, so the connection cap, not the kernel,
    decides who is refused (at the soft limit every new socket fails, other clients' included)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        logger.warning("open-files limit %s is below HTTP_MAX_CONNECTIONS + %s: lower the cap", target, SPARE_FDS)


def run_uvicorn(factory: str, settings: Settings, **overrides: object) -> None:
    """Serve `factory` (an import string) with `uvicorn_config`, in WORKERS processes (as uvicorn.run)."""
    raise_fd_limit(settings.http_max_connections + SPARE_FDS)
    config = uvicorn_config(factory, settings, **overrides)
    server = uvicorn.Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
    if not server.started and config.workers == 1:
        sys.exit(3)  # uvicorn.run's STARTUP_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
