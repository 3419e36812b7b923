"""Shared fixtures: a real PostgreSQL, the real app served over real HTTP, tokens.

Database: `TEST_DATABASE_URL` when set (a server you provide), else a private embedded server
started for the session. Either way the session gets a fresh database of its own, migrated with
yoyo exactly as `just migrate` does, and dropped at the end.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import psycopg
import pytest
import uvicorn
from harness import PgBouncer, pgbouncer_binary
from psycopg import sql

from app.config import Settings
from app.embedded_pg import EmbeddedPostgres
from app.main import create_app
from app.migrate import apply
from app.serve import uvicorn_config

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def scratch_database(server_url: str, prefix: str, *, migrate: bool) -> Iterator[str]:
    """A new database on `server_url` (migrated with yoyo if `migrate`), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _with_database(server_url, name)
        if migrate:
            apply(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    with EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data") as server:
        yield server.url


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    with scratch_database(server_url, "tasks_test", migrate=True) as url:
        yield url


@pytest.fixture(scope="session")
def base_settings(database_url: str) -> Settings:
    """The suite's settings. Every request comes from 127.0.0.1 and some users write a lot, so the
    per-address and per-user rates are far above the defaults here; tests/test_limits.py starts
    servers with the real numbers (or small ones) to test the limits themselves."""
    return Settings.from_mapping(
        {
            "DATABASE_URL": database_url,
            "JWT_SECRET": SECRET,
            "DB_POOL_TIMEOUT_S": "3",
            "AUTH_RATE_PER_MIN": "1000000",
            "WRITE_RATE_PER_MIN": "1000000",
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """The real app (or `app`) under uvicorn, on a free port, in a background thread."""

    def __init__(self, settings: Settings, app: Callable[..., Any] | None = None, **app_options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The very uvicorn configuration of `just serve` (protocol, limits, proxy headers).
        config = uvicorn_config(
            app or create_app(settings, **app_options),
            settings,
            host="127.0.0.1",
            port=self.port,
            workers=1,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def live(base_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(base_settings) as server:
        yield server


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[[Settings], LiveServer]]:
    """Start extra servers with other settings (issuer/audience, small limits...)."""
    started: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        server = LiveServer(settings).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def make_token(
    sub: Any = None,
    *,
    secret: Any = SECRET,
    algorithm: str = "HS256",
    exp_in: float | None = 3600,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A signed token; `secret` may be a private key and `headers` may carry a `kid`."""
    payload: dict[str, Any] = dict(claims)
    if sub is not None:
        payload["sub"] = sub
    now = int(time.time())
    payload.setdefault("iat", now)
    if exp_in is not None:
        payload["exp"] = now + exp_in
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class User:
    """A fresh identity per test: tests never see each other's rows."""

    def __init__(self) -> None:
        self.id = f"user-{uuid.uuid4()}"
        self.token = make_token(self.id, email=f"{self.id}@example.com", name="Test User")
        self.headers = bearer(self.token)


@pytest.fixture
def user() -> User:
    return User()


@pytest.fixture
def other_user() -> User:
    return User()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection, to check what the API really stored."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


ROOT = Path(__file__).resolve().parent.parent


# --- PgBouncer (transaction pooling, as Neon's pooled endpoint) -------------------------------------


@pytest.fixture(scope="session")
def pgbouncer(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction pooling mode in front of the test PostgreSQL.

    Required in CI (`.ci/run` installs it); elsewhere, a machine without it skips these tests.
    """
    if pgbouncer_binary() is None and not os.environ.get("CI"):
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer); CI runs these")
    with PgBouncer(server_url, tmp_path_factory.mktemp("pgbouncer")) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pooled_settings(pgbouncer: PgBouncer, database_url: str, base_settings: Settings) -> Settings:
    """The session's settings, but through PgBouncer with prepared statements off.

    Behind a pooler the statement timeout is the database's (or role's) own setting, as on Neon.
    """
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
                sql.Identifier(name), sql.Literal(base_settings.db_statement_timeout_ms)
            )
        )
    return base_settings.with_(database_url=pgbouncer.url_for(database_url), db_prepare_threshold=None)


@pytest.fixture(scope="session")
def live_pooled(pooled_settings: Settings) -> Iterator[LiveServer]:
    """The app served over real HTTP, reaching PostgreSQL only through PgBouncer."""
    with LiveServer(pooled_settings) as server:
        yield server
