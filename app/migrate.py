"""Schema migrations with yoyo: `python -m app.migrate apply|rollback` (what `just migrate`/`rollback` run).

`migrations/NNNN_name.sql` goes forward, `NNNN_name.rollback.sql` back. Production only goes forward;
`rollback` undoes the latest applied migration (one step) for development.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from yoyo import get_backend, read_migrations

from app.config import ConfigError, Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

logger = logging.getLogger("app.migrate")


def yoyo_url(database_url: str) -> str:
    """yoyo picks its driver from the scheme: `postgresql+psycopg://` is psycopg 3."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ConfigError("DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+psycopg://{rest}"


def apply(database_url: str) -> list[str]:
    """Apply every pending migration; returns their ids. Safe to run concurrently (yoyo's lock)."""
    backend = get_backend(yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def rollback(database_url: str, steps: int = 1) -> list[str]:
    """Roll back the latest `steps` applied migrations; returns their ids."""
    backend = get_backend(yoyo_url(database_url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        applied = backend.to_rollback(migrations)[:steps]
        backend.rollback_migrations(applied)
    return [m.id for m in applied]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.migrate", description=__doc__)
    parser.add_argument("command", choices=["apply", "rollback"])
    parser.add_argument("--steps", type=int, default=1, help="rollback: how many migrations (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = Settings.from_env()
        if settings.database_url is None:
            raise ConfigError("DATABASE_URL is not set")
        if args.command == "apply":
            done = apply(settings.database_url)
            logger.info("applied: %s", ", ".join(done) or "nothing pending")
        else:
            done = rollback(settings.database_url, args.steps)
            logger.info("rolled back: %s", ", ".join(done) or "nothing applied")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
