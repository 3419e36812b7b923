"""Real processes the robustness tests start and stop: the API server (`python -m app.serve`, as
`just serve` runs it) and PgBouncer in transaction pooling mode (Neon's pooled endpoint in small).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import psycopg

from app.embedded_pg import _free_port as free_port
from app.embedded_pg import _make_traversable, _system_user

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Poll `condition()` until it is truthy; returns the seconds it took."""
    start = time.monotonic()
    while True:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


class ServerProcess:
    """`python -m app.serve` with the given environment, its output captured in a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            # A clean environment: nothing from the developer's shell (or a .env) leaks in.
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONUNBUFFERED": "1",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": "1",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.serve"],
            cwd=self.log_path.parent,  # no .env there
            env={**self.env, "PYTHONPATH": str(ROOT)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=30, what=f"server on {self.url}\n{self.output()}")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        if self._log is not None and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def system_binary(name: str) -> str | None:
    """A Debian package's program, also where root's PATH has it but a user's does not."""
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )


def pgbouncer_binary() -> str | None:
    return system_binary("pgbouncer")


class Daemon:
    """A server binary run from its own work dir, its stderr in `stderr.log` there.

    Under root it runs as the embedded PostgreSQL's system user: PgBouncer refuses root, and
    nginx must show that it needs no privilege.
    """

    name = "daemon"
    log_files: tuple[str, ...] = ()

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str]) -> None:
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = _system_user()
            _make_traversable(self.work_dir)
            for path in [self.work_dir, *self.work_dir.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(
            argv,
            cwd="/",
            stdout=subprocess.DEVNULL,
            stderr=(self.work_dir / "stderr.log").open("wb"),
            **kwargs,
        )

    def _running(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        return True

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:]
            for p in (*(self.work_dir / name for name in self.log_files), self.work_dir / "stderr.log")
            if p.exists()
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        raise NotImplementedError


class PgBouncer(Daemon):
    """A real PgBouncer in transaction pooling mode in front of one PostgreSQL server.

    It refuses to run as root; under root it runs as the embedded PostgreSQL's system user. Like
    Neon's pooler, it accepts no startup parameter it cannot track (no `options`).
    """

    name = "pgbouncer"
    log_files = ("pgbouncer.log",)

    def __init__(self, server_url: str, work_dir: Path, pool_size: int = 20) -> None:
        super().__init__(work_dir)
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.binary = binary
        self.port = free_port()
        target = urlsplit(server_url)
        self.target_host = target.hostname or "127.0.0.1"
        self.target_port = target.port or 5432
        self.user = unquote(target.username or "postgres")
        self.password = unquote(target.password or "")
        self.pool_size = pool_size

    def url_for(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by PgBouncer's."""
        parts = urlsplit(database_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> Self:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ini = self.work_dir / "pgbouncer.ini"
        # Clients are trusted; the password (if any) is what PgBouncer logs in to the server with.
        (self.work_dir / "userlist.txt").write_text(f'"{self.user}" "{self.password}"\n')
        ini.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={self.target_host} port={self.target_port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.work_dir / 'userlist.txt'}",
                    "pool_mode = transaction",
                    f"default_pool_size = {self.pool_size}",
                    "max_client_conn = 1000",
                    f"logfile = {self.work_dir / 'pgbouncer.log'}",
                    f"pidfile = {self.work_dir / 'pgbouncer.pid'}",
                    "server_reset_query =",
                    "",
                ]
            )
        )
        self._spawn([self.binary, str(ini)])
        probe = f"postgresql://{quote(self.user)}@127.0.0.1:{self.port}/postgres"
        wait_until(lambda: self._answers(probe), timeout=15, what=f"pgbouncer:\n{self.log()}")
        return self

    def _answers(self, url: str) -> bool:
        self._running()
        with psycopg.connect(url, connect_timeout=2, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
        return True


class RecordingHandler(logging.Handler):
    """Keeps every record it is given (for servers running in this process, in a thread)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        return "\n".join(formatter.format(record) for record in self.records)


@contextlib.contextmanager
def recording(logger_name: str = "") -> Iterator[RecordingHandler]:
    """Record what `logger_name` (default: every logger) logs; Litestar's logging config, applied
    when an app starts, replaces the root logger's handlers but leaves other loggers' alone.
    """
    logger = logging.getLogger(logger_name)
    handler = RecordingHandler()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def nginx_binary() -> str | None:
    return system_binary("nginx")


class Nginx(Daemon):
    """nginx from deploy/ (rendered by deploy/render.py) in front of `upstreams`, on a free port.

    It runs as an ordinary user from its own directory: under root, as the embedded PostgreSQL's
    system user, so the test proves it needs no privilege.
    """

    name = "nginx"
    log_files = ("logs/error.log",)

    def __init__(self, work_dir: Path, upstreams: list[str]) -> None:
        super().__init__(work_dir)
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
        self.binary = binary
        self.upstreams = upstreams
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        render = [sys.executable, str(ROOT / "deploy" / "render.py"), "--dir", str(self.work_dir)]
        render += ["--listen", f"127.0.0.1:{self.port}"]
        for upstream in self.upstreams:
            render += ["--upstream", upstream]
        subprocess.run(render, check=True, capture_output=True, timeout=30)
        self._spawn([self.binary, "-p", str(self.work_dir), "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"])
        wait_until(self._answers, timeout=15, what=f"nginx on {self.url}:\n{self.log()}")
        return self

    def _answers(self) -> bool:
        return self._running() and httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def uid(self) -> int:
        """The real uid of nginx's master process."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])

    def access_log(self) -> list[dict[str, Any]]:
        path = self.work_dir / "logs" / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
