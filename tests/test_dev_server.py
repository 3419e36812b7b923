"""`just dev` with no configuration at all: embedded PostgreSQL, generated secret, migrations, serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import ROOT, bearer, free_port, make_token

from app.embedded_pg import EmbeddedPostgres


def test_dev_server_needs_no_configuration(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "JWT_SECRET", "BETTER_AUTH_SECRET"}}
    env.update(PYTHONPATH=str(ROOT), PORT=str(port))
    log = (tmp_path / "dev.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.dev"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.3)
        output = (tmp_path / "dev.log").read_text()
        assert "embedded PostgreSQL" in output
        assert "generated development secret" in output
        secret = (tmp_path / ".devdb" / "jwt_secret").read_text().strip()
        assert len(secret) >= 32 and secret not in output  # said, not printed
        token = make_token("dev-user", secret=secret)
        created = httpx.post(f"{base}/api/tasks", json={"title": "works"}, headers=bearer(token))
        assert created.status_code == 201  # migrations were applied
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log.close()
    assert not EmbeddedPostgres(tmp_path / ".devdb" / "pgdata").is_running()
