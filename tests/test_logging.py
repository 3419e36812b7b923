"""What the server logs: every 5xx with its traceback and request id; never a token, a password or
the JWT secret. The server runs as in production (`python -m app.serve`), at DEBUG, and its whole
output is read back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import SECRET, User, make_token, scratch_database
from harness import ServerProcess

DB_PASSWORD = "db-password-" + uuid.uuid4().hex
USER_PASSWORD = "hunter2-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def log_db(server_url: str) -> Iterator[str]:
    """A database of this module's own: a test breaks its schema on purpose."""
    with scratch_database(server_url, "tasks_logs", migrate=True) as url:
        yield url


def _with_password(url: str) -> str:
    """`url` with a password, if it has none (a server that needs none never receives it)."""
    parts = urlsplit(url)
    if parts.password:
        return url
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(DB_PASSWORD)}@{parts.hostname}:{parts.port}"))


def test_5xx_are_logged_with_traceback_and_request_id_and_secrets_never(log_db: str, tmp_path: Path) -> None:
    database_url = _with_password(log_db)
    env = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": SECRET,
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "text",  # JSON lines: tests/test_observability_logs.py
        "DB_STATEMENT_TIMEOUT_MS": "300",
    }
    user = User()
    forged = make_token(user.id, secret="forged-secret-0123456789-abcdefghijklmnop")
    with ServerProcess(env, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # Credentials everywhere a careless server might log them.
            ok = http.post(
                "/api/tasks",
                json={"title": "mine", "password": USER_PASSWORD, "token": user.token},
                headers={**user.headers, "X-Request-ID": "log-ok-1"},
            )
            assert ok.status_code == 201
            assert http.get(f"/api/tasks?access_token={user.token}&password={USER_PASSWORD}").status_code == 401
            assert http.get("/api/tasks", headers={"Cookie": f"token={user.token}"}).status_code == 401
            assert http.get("/api/tasks", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
            assert http.get("/api/tasks", headers={"Authorization": f"Token {user.token}"}).status_code == 401
            assert http.post("/api/tasks", content=b"{", headers=user.headers).status_code == 400

            with psycopg.connect(log_db, autocommit=True) as conn:
                # A 503: a statement past DB_STATEMENT_TIMEOUT_MS.
                with conn.transaction():
                    conn.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                    unavailable = http.get("/api/tasks", headers={**user.headers, "X-Request-ID": "log-503-1"})
                assert_error(unavailable, 503)
                # A 500: the schema is not what the code expects (a migration was not applied).
                conn.execute("ALTER TABLE tasks RENAME TO tasks_elsewhere")
                try:
                    crashed = http.get("/api/tasks", headers={**user.headers, "X-Request-ID": "log-500-1"})
                finally:
                    conn.execute("ALTER TABLE tasks_elsewhere RENAME TO tasks")
                assert_error(crashed, 500)
                assert "tasks_elsewhere" not in crashed.text and "relation" not in crashed.text
            assert http.get("/api/tasks", headers=user.headers).status_code == 200
        server.terminate()
        assert server.wait(timeout=20) == 0
        output = server.output()

    for request_id, status, cause in (
        ("log-500-1", 500, "UndefinedTable"),
        ("log-503-1", 503, "QueryCanceled"),
    ):
        entry = _entry_for(output, request_id)
        assert f"answered {status}" in entry, output
        assert "Traceback (most recent call last)" in entry and cause in entry, entry
    secrets = {
        "a token": user.token,
        "a token's signature": user.token.rsplit(".", 1)[1],
        "a forged token": forged,
        "the JWT secret": SECRET,
        "the database password": DB_PASSWORD,
        "a user's password": USER_PASSWORD,
    }
    for what, secret in secrets.items():
        assert secret not in output, f"{what} is in the log"


def _entry_for(output: str, request_id: str) -> str:
    """The log entry (its line and the traceback lines that follow) that names `request_id`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if request_id in line)
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start:end])
