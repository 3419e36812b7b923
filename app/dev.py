"""Zero-configuration development server (`just dev`).

- `DATABASE_URL` unset: a private PostgreSQL in `.devdb/` (kept between runs, git-ignored).
- `JWT_SECRET` unset: a generated development secret, kept in `.devdb/jwt_secret` so tokens
  survive restarts; the log says so.
- Migrations applied, then uvicorn with auto-reload on http://HOST:PORT (default 127.0.0.1:8000).
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import sys
from pathlib import Path

import uvicorn

from app.config import ConfigError, Settings
from app.embedded_pg import EmbeddedPostgres
from app.http.protocol import LimitedHttpToolsProtocol
from app.migrate import apply
from app.serve import http_limits

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Beside where `just dev` runs (the project root): data and the dev secret outlive restarts.
DEV_DIR = Path.cwd() / ".devdb"

logger = logging.getLogger("app.dev")


def _dev_secret() -> str:
    path = DEV_DIR / "jwt_secret"
    if not path.is_file():
        DEV_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="dev: %(message)s")
    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one summary line is enough
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    server: EmbeddedPostgres | None = None
    try:
        if settings.database_url is None:
            server = EmbeddedPostgres(DEV_DIR / "pgdata")
            server.start()
            os.environ["DATABASE_URL"] = server.url
            logger.info("DATABASE_URL not set: embedded PostgreSQL at %s (data in %s)", server.url, server.data_dir)
        if settings.jwt_secret is None:
            os.environ["JWT_SECRET"] = _dev_secret()
            logger.info("JWT_SECRET not set: using a generated development secret from %s", DEV_DIR / "jwt_secret")
        applied = apply(os.environ["DATABASE_URL"])
        logger.info("migrations applied: %s", ", ".join(applied) or "none pending")
        logger.info("serving on http://%s:%s (docs: /schema)", settings.host, settings.port)
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            reload=True,
            reload_dirs=[str(PROJECT_DIR / "app"), str(PROJECT_DIR / "sql")],
            reload_includes=["*.py", "*.sql"],
            log_level=settings.log_level.lower(),
            # The protocol of `just serve`: among others, open event streams end on a reload instead
            # of holding it (uvicorn's default waits for every response, and a stream never ends).
            http=functools.partial(LimitedHttpToolsProtocol, limits=http_limits(settings)),  # type: ignore[arg-type]
        )
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
