"""Structured logs: `just serve` writes one JSON object per line (LOG_FORMAT=json by default), one
access line per request (ACCESS_LOG), and never a token, a password, a secret or a query value.
The server runs as in production (`python -m app.serve`); its whole output is parsed back.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from conftest import SECRET, User, make_token
from harness import ServerProcess

QUERY_SECRET = "query-value-" + uuid.uuid4().hex
PASSWORD = "pass-" + uuid.uuid4().hex
ACCESS_FIELDS = {"time", "level", "logger", "message", "request_id", "method", "route", "path", "status", "duration_ms"}


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the output as a JSON object; fails on any line that is not one."""
    entries = []
    for line in output.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def access_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Access lines, but those of the harness's own /health probes."""
    return [e for e in entries if e.get("logger") == "app.access" and e.get("route") != "/health"]


def test_json_lines_with_one_access_line_per_request_and_no_secrets(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "JWT_SECRET": SECRET, "WORKERS": "2", "DB_STATEMENT_TIMEOUT_MS": "300"}
    user = User()
    forged = make_token(user.id, secret="forged-secret-0123456789-abcdefghijklmnop")
    with ServerProcess(env, tmp_path / "server.log") as server:  # LOG_FORMAT unset: json under app.serve
        with httpx.Client(base_url=server.url, timeout=30) as http:
            account = {"email": f"{user.id}@example.com", "password": PASSWORD, "name": "A"}
            sent = [
                http.post(
                    "/api/tasks",
                    json={"title": "a", "password": PASSWORD},
                    headers={**user.headers, "X-Request-ID": "obs-1"},
                ),
                http.get(f"/api/tasks?q={QUERY_SECRET}&limit=5", headers=user.headers),
                http.get(f"/api/tasks?access_token={user.token}"),
                http.get("/api/tasks", headers={"Authorization": f"Bearer {forged}"}),
                http.post("/api/auth/signup", json=account),
                http.post("/api/auth/signin", json={**account, "password": PASSWORD + "x"}),
                http.get("/nowhere/%0Aforged"),
            ]
            with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
                conn.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
                sent.append(http.get("/api/tasks", headers={**user.headers, "X-Request-ID": "obs-503"}))
        server.terminate()
        assert server.wait(timeout=20) == 0
        output = server.output()

    assert [r.status_code for r in sent] == [201, 200, 401, 401, 201, 401, 404, 503]
    entries = json_lines(output)
    access = access_lines(entries)
    assert len(access) == len(sent), access
    for entry in access:
        assert entry.keys() >= ACCESS_FIELDS, entry
        assert entry["level"] == "INFO"
        assert isinstance(entry["status"], int) and isinstance(entry["duration_ms"], float)
    by_id = {e["request_id"]: e for e in access}
    assert by_id["obs-1"]["route"] == "/api/tasks" and by_id["obs-1"]["status"] == 201
    assert by_id["obs-1"]["method"] == "POST" and by_id["obs-1"]["time"].endswith("+00:00")
    for answer in sent:  # the id the client saw is the one logged
        assert answer.headers["x-request-id"] in by_id
    unmatched = next(e for e in access if e["status"] == 404)
    assert unmatched["route"] == "unmatched"
    assert "\n" not in unmatched["message"]

    # The 503 is logged once more, as the error it is, with its request id and the exception.
    errors = [e for e in entries if e.get("logger") == "app.errors" and e.get("request_id") == "obs-503"]
    assert len(errors) == 1 and errors[0]["level"] == "WARNING", errors
    assert "QueryCanceled" in errors[0]["exception"]

    for what, secret in {
        "a token": user.token,
        "a forged token": forged,
        "a token's signature": user.token.rsplit(".", 1)[1],
        "the JWT secret": SECRET,
        "a password": PASSWORD,
        "a query string value": QUERY_SECRET,
    }.items():
        assert secret not in output, f"{what} is in the log"
    assert "?" not in "".join(e["path"] for e in access)


def test_access_log_off_and_text_format(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "JWT_SECRET": SECRET, "ACCESS_LOG": "false"}
    with ServerProcess(env, tmp_path / "quiet.log") as server:
        assert httpx.get(server.url + "/api/tasks").status_code == 401
        server.terminate()
        assert server.wait(timeout=20) == 0
        assert not access_lines(json_lines(server.output()))

    env = {"DATABASE_URL": database_url, "JWT_SECRET": SECRET, "LOG_FORMAT": "text"}
    with ServerProcess(env, tmp_path / "text.log") as server:
        answer = httpx.get(server.url + "/api/tasks", headers={"X-Request-ID": "text-1"})
        assert answer.status_code == 401
        server.terminate()
        assert server.wait(timeout=20) == 0
        output = server.output()
    line = next(line for line in output.splitlines() if "app.access" in line and "text-1" in line)
    assert line.startswith("INFO - ") and "GET /api/tasks 401" in line and "[request text-1]" in line
