"""`just bench`: throughput and latency of the service against a bare-ASGI reference, on this machine.

What it does, in one run (about 5 minutes; the first run also builds the 1M-row database):
1. A PostgreSQL server: `BENCH_DATABASE_URL` (else `DATABASE_URL`) names a server on which it creates
   its own databases (`tasks_bench`, `tasks_bench_scale`); with neither set, a private embedded
   PostgreSQL in `.benchdb/` (kept, so the scale database is built once).
2. Datasets: `tasks_bench` is rebuilt every run: 100 users x 20 tasks, plus one user with 1,000 tasks.
   `tasks_bench_scale` holds 1,000,000 tasks across 10,000 users (one INSERT ... SELECT
   generate_series), reused while its marker says so.
   `tasks_bench_minimal` gets the same migrations and data, then `tasks` is cut down to the primary
   key and one index for the default list, at the default fillfactor, without triggers (`minimal_schema`).
3. Servers: the service (`python -m app.serve`, 1 worker), the reference (`python -m
   bench.reference_app`, same uvicorn settings, same pool settings) on the service's database (what
   the framework costs) and the same reference on `tasks_bench_minimal` (what the framework and the
   schema cost), then the service with 2 workers and the service on the scale database.
4. wrk (bench/wrk.lua): 32 connections per scenario (list, get, create, update, toggle, mix); after a
   warm-up, the three run interleaved in slices (`compare`), so that a burst of other load on this
   shared machine hits all of them; a VACUUM before each scenario, so that none inherits the
   previous one's dead rows. Creates go to separate writer users, so lists stay 20 long. WORKERS=2 is
   compared with 1 worker the same way. The load average is recorded around each scenario, the HOT
   share of `tasks` updates after each write scenario, and at the end each secondary index's size,
   scans and cost per write (bench/indexes.py's measurement).

Environment knobs: BENCH_DURATION_S (8), BENCH_WARMUP_S (2), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
BENCH_SLICES (4), BENCH_SCENARIOS (comma-separated subset), BENCH_SCALE=0 (skip the scale part),
BENCH_ORGANIZING=0 (skip the organizing part: a 50,000-task user's filtered and sorted pages), BENCH_WORKERS2=0 (skip
the WORKERS=2 run), BENCH_OBSERVABILITY=0 (skip the cost of metrics and JSON access logs: the service with
METRICS_ENABLED, ACCESS_LOG and LOG_FORMAT=json at INFO against the same with all of it off, interleaved).
A JSON copy of the results goes to reports/bench-<time>.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import psycopg
import psycopg.sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import SqlFiles  # noqa: E402
from app.embedded_pg import EmbeddedPostgres  # noqa: E402
from app.migrate import apply  # noqa: E402
from app.tasks.paging import NO_CURSOR  # noqa: E402

SCENARIOS = ("list", "get", "create", "update", "toggle", "mix")
USERS = 100
TASKS_PER_USER = 20
BIG_USER_TASKS = 1_000
SCALE_USERS = 10_000
SCALE_TASKS = 1_000_000
SCALE_MARKER = f"bench-scale v1 {SCALE_USERS} users {SCALE_TASKS} tasks"
BENCH_DB = "tasks_bench"
MINIMAL_DB = "tasks_bench_minimal"
SCALE_DB = "tasks_bench_scale"

TARGET_RATIO = 0.8  # service / reference on the same schema: what the framework costs
TARGET_MINIMAL_RATIO = 0.95  # service / reference on the minimal schema: framework plus schema
TARGET_P99_MS = 20.0
WRITE_SCENARIOS = ("create", "update", "toggle", "mix")
# The minimal schema's one secondary index: the default list (newest first, ties by id).
MINIMAL_LIST_INDEX = "CREATE INDEX tasks_minimal_list_idx ON tasks (user_id, created_at DESC, id DESC)"
TARGET_SCALING = 1.5


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


DURATION_S = env_int("BENCH_DURATION_S", 8)
WARMUP_S = env_int("BENCH_WARMUP_S", 2)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 32)
SLICES = env_int("BENCH_SLICES", 4)
THREADS = env_int("BENCH_THREADS", 2)
SECRET = os.environ.get("BENCH_JWT_SECRET") or secrets.token_urlsafe(48)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- results -------------------------------------------------------------------------------------


@dataclass
class Result:
    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    socket_errors: int
    timeouts: int
    bad_status: int
    statuses: str
    # CPU seconds spent while this was measured (`compare` fills them): the server's process, and
    # the database backends its pool holds (None when they are not processes of this machine).
    server_cpu_s: float = 0.0
    database_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.timeouts + self.bad_status

    @property
    def p50_ms(self) -> float:
        return self.p50_us / 1000

    @property
    def server_us(self) -> float:
        """The server's CPU per request, µs."""
        return self.server_cpu_s / self.requests * 1e6 if self.requests else 0.0

    @property
    def database_us(self) -> float | None:
        """The database server's CPU per request, µs (None: not measured)."""
        if self.database_cpu_s is None or not self.requests:
            return None
        return self.database_cpu_s / self.requests * 1e6

    @property
    def p99_ms(self) -> float:
        return self.p99_us / 1000

    def error_text(self) -> str:
        if not self.errors:
            return "0"
        parts = [f"{self.errors}"]
        if self.statuses:
            parts.append(f"status {self.statuses}")
        if self.socket_errors or self.timeouts:
            parts.append(f"socket {self.socket_errors} timeout {self.timeouts}")
        return " ".join(parts)


@dataclass
class Report:
    machine: str
    database: str
    duration_s: int
    connections: int
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers2: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, Any] = field(default_factory=dict)
    observability: dict[str, Any] = field(default_factory=dict)
    explain: dict[str, str] = field(default_factory=dict)
    background_busy_cores: float = 0.0
    indexes: list[dict[str, Any]] = field(default_factory=list)
    organizing: list[dict[str, Any]] = field(default_factory=list)


# --- database ------------------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """(server URL, description): the given server, else the embedded one in .benchdb/."""
    given = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if given:
        with psycopg.connect(given) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        yield given, f"PostgreSQL {version[0] if version else '?'} at {urlsplit(given).hostname}"
        return
    server = EmbeddedPostgres(ROOT / ".benchdb" / "pgdata")
    server.start()
    try:
        with psycopg.connect(server.url) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        yield server.url, f"embedded PostgreSQL {version[0] if version else '?'} (fsync off)"
    finally:
        server.stop()


def database_cpu_seconds(url: str) -> float | None:
    """CPU seconds used so far by the client backends connected to `url`'s database (None: the
    server is not on this machine, or its processes are not readable here)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except FileNotFoundError:
            continue  # a backend that just ended
        except PermissionError:
            return None
    return total if pids and Path(f"/proc/{pids[0]}").exists() else None


def recreate_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    apply(url)
    return url


def seed_bench(url: str) -> None:
    """100 users x 20 tasks (`bench-001`...), and `bench-big` with 1,000 tasks."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO users (id, email, name)
            SELECT format('bench-%%s', lpad(u::text, 3, '0')), format('bench%%s@example.com', u), 'Bench'
            FROM generate_series(1, %(users)s) u
            UNION ALL SELECT 'bench-big', 'big@example.com', 'Big'
            """,
            {"users": USERS},
        )
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at)
            SELECT format('bench-%%s', lpad(u::text, 3, '0')), format('Task %%s of user %%s', t, u),
                   CASE WHEN t %% 2 = 0 THEN format('Some details about task %%s', t) END,
                   t %% 3 = 0, now() - (t * interval '1 minute'), now() - (t * interval '1 minute')
            FROM generate_series(1, %(users)s) u, generate_series(1, %(tasks)s) t
            """,
            {"users": USERS, "tasks": TASKS_PER_USER},
        )
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at)
            SELECT 'bench-big', format('Big task %%s', t), format('Some details about task %%s', t),
                   t %% 3 = 0, now() - (t * interval '1 minute'), now() - (t * interval '1 minute')
            FROM generate_series(1, %(tasks)s) t
            """,
            {"tasks": BIG_USER_TASKS},
        )
        conn.execute("VACUUM ANALYZE")


def scale_database(server_url: str) -> str:
    """The 1M-task database, built once (one INSERT ... SELECT generate_series) and then reused."""
    url = with_database(server_url, SCALE_DB)
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (SCALE_DB,)
        ).fetchone()
    if row and row[0] == SCALE_MARKER:
        log(f"reusing {SCALE_DB} ({SCALE_TASKS:,} tasks)")
        return url
    log(f"building {SCALE_DB}: {SCALE_TASKS:,} tasks across {SCALE_USERS:,} users (once; ~1 min)")
    started = time.monotonic()
    url = recreate_database(server_url, SCALE_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO users (id, email, name)
            SELECT format('scale-%%s', u), format('scale%%s@example.com', u), 'Scale'
            FROM generate_series(1, %(users)s) u
            """,
            {"users": SCALE_USERS},
        )
        # Interleaved users: each user's tasks are spread over the table, as years of use would leave them.
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at)
            SELECT format('scale-%%s', g %% %(users)s + 1), format('Task number %%s', g),
                   CASE WHEN g %% 2 = 0 THEN format('Some details about task %%s', g) END,
                   g %% 3 = 0, now() - (g * interval '1 second'), now() - (g * interval '1 second')
            FROM generate_series(1, %(tasks)s) g
            """,
            {"users": SCALE_USERS, "tasks": SCALE_TASKS},
        )
        conn.execute("VACUUM ANALYZE")
        conn.execute(f"COMMENT ON DATABASE \"{SCALE_DB}\" IS '{SCALE_MARKER}'")
    log(f"built {SCALE_DB} in {time.monotonic() - started:.0f} s")
    return url


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM tasks WHERE user_id LIKE 'writer-%'")
        conn.execute("VACUUM ANALYZE tasks")


def minimal_schema(url: str) -> None:
    """Reduce a migrated database's `tasks` to the primary key and one index for the default list,
    with the default fillfactor and no triggers: what the minimal reference runs on. Indexes that back a constraint
    (unique keys) stay: they are behaviour, not a choice of access path."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'tasks'::regclass
              AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            """
        ).fetchall()
        for (name,) in rows:
            conn.execute(psycopg.sql.SQL("DROP INDEX {}").format(psycopg.sql.Identifier(name)))
        conn.execute(MINIMAL_LIST_INDEX)
        conn.execute("ALTER TABLE tasks RESET (fillfactor)")
        # No triggers either (the live-updates NOTIFY triggers): the minimal schema is a bare table.
        triggers = conn.execute(
            """
            SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE NOT t.tgisinternal AND c.relname IN ('tasks', 'task_tombstones')
            """
        ).fetchall()
        for trigger, table in triggers:
            conn.execute(
                psycopg.sql.SQL("DROP TRIGGER {} ON {}").format(
                    psycopg.sql.Identifier(trigger), psycopg.sql.Identifier(table)
                )
            )


def table_stats(url: str, table: str, *columns: str) -> tuple[int, ...]:
    """Counters of `table` from pg_stat_user_tables. Backends report within about a second of going idle."""
    query = psycopg.sql.SQL("SELECT {} FROM pg_stat_user_tables WHERE relname = %s").format(
        psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns))
    )
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, (table,)).fetchone()
    return tuple(int(v) for v in row) if row else (0,) * len(columns)


# Tables whose rows the benchmark's writes update: tasks, and users where a write keeps a count there.
HOT_TABLES = ("tasks", "users")


def update_counters(url: str) -> dict[str, tuple[int, ...]]:
    return {table: table_stats(url, table, "n_tup_upd", "n_tup_hot_upd") for table in HOT_TABLES}


def hot_share(before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Per table: updates, HOT updates and their share between two `update_counters`."""
    out = {}
    for table in HOT_TABLES:
        updates, hot = after[table][0] - before[table][0], after[table][1] - before[table][1]
        out[table] = {"updates": updates, "hot": hot, "share": hot / updates if updates else None}
    return out


def index_scans(url: str) -> dict[str, tuple[int, int]]:
    """index name -> (scans so far, size in bytes) for `tasks`."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexrelname, idx_scan, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE relname = 'tasks'"
        ).fetchall()
    return {name: (int(scans), int(size)) for name, scans, size in rows}


def loadavg() -> str:
    """The 1-minute load average (runnable processes, all users): how busy the shared machine was."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "?"


def user_task_ids(url: str, user_ids: list[str]) -> dict[str, list[int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT user_id, array_agg(id ORDER BY id) FROM tasks WHERE user_id = ANY(%s) GROUP BY user_id",
            (user_ids,),
        ).fetchall()
    return {user_id: ids for user_id, ids in rows}


def explain(url: str, user_id: str, task_id: int) -> str:
    """EXPLAIN ANALYZE of the list (first page of 20) and get statements as the service runs them:
    prepared, and explained after psycopg's prepare threshold and PostgreSQL's five custom plans, so
    the plan shown is the one the server settled on."""
    sql_dir = ROOT / "sql" / "tasks"
    list_params = {
        "user_id": user_id,
        "completed": None,
        "pattern": None,
        "sort": "-created_at",
        "limit": 20,
        "offset": 0,
        **NO_CURSOR,
        **NO_ORGANIZING,
    }
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, title, params in (
            ("list", f"list (limit 20) for {user_id}", list_params),
            ("get", f"get {task_id} for {user_id}", {"user_id": user_id, "id": task_id}),
        ):
            text, values = prepared((sql_dir / f"{name}.sql").read_text(), params)
            conn.execute(f"PREPARE bench_{name} AS {text}")
            args = psycopg.sql.SQL(", ").join(psycopg.sql.Literal(v) for v in values).as_string(conn)
            for _ in range(6):
                conn.execute(f"EXECUTE bench_{name}({args})")
            rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE bench_{name}({args})").fetchall()
            out.append(f"-- {title}\n" + "\n".join(r[0] for r in rows))
    return "\n".join(out)


def prepared(query: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """`%(name)s` placeholders as `$n`, and the values in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    code = "\n".join(line for line in query.splitlines() if not line.lstrip().startswith("--"))
    text = re.sub(r"%\((\w+)\)s", number, code)
    return text, [params[name] for name in names]


# --- tokens and wrk data ------------------------------------------------------------------------


def token(user_id: str) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "email": f"{user_id}@example.com",
        "name": "Bench User",
        "iat": now,
        "exp": now + 86_400,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def write_lua_data(path: Path, users: dict[str, list[int]], writers: list[str]) -> Path:
    def lua_user(user_id: str, ids: list[int]) -> str:
        return f'{{auth="Bearer {token(user_id)}",ids={{{",".join(map(str, ids))}}}}}'

    lines = ["return {", "users = {"]
    lines += [lua_user(u, ids) + "," for u, ids in users.items()]
    lines += ["},", "writers = {"]
    lines += [f'{{auth="Bearer {token(w)}"}},' for w in writers]
    lines += ["},", "}"]
    path.write_text("\n".join(lines))
    return path


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process (the service or the reference) on a free port, in its own process group."""

    def __init__(self, module: str, database_url: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.module = module
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "JWT_SECRET": SECRET,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": str(workers),
            "LOG_LEVEL": "WARNING",
            # wrk writes as a few users at thousands of requests per second: far above the per-user
            # write rate a person needs. The check still runs on every write (its cost is measured);
            # it just never refuses here.
            "WRITE_RATE_PER_MIN": "100000000",
            **(env or {}),
        }
        self.log_path = ROOT / "reports" / f"bench-{module.replace('.', '_')}-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, probe_token: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.url}/api/tasks?limit=1", headers={"Authorization": f"Bearer {probe_token}"}
        )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited; see {self.log_path}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(request, timeout=2) as response,  # noqa: S310 - our own server
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.module} not ready after {timeout} s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        text = self.log_path.read_text()
        if "Traceback" in text or " ERROR " in text:
            log(f"{self.module} logged errors; see {self.log_path}")
        else:
            self.log_path.unlink()


@contextlib.contextmanager
def running(
    module: str, database_url: str, probe_token: str, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Server]:
    server = Server(module, database_url, workers, env)
    try:
        server.wait_ready(probe_token)
        yield server
    finally:
        server.stop()


# --- wrk ----------------------------------------------------------------------------------------


def wrk(url: str, scenario: str, data: Path, seconds: int, query: str = "", connections: int = CONNECTIONS) -> Result:
    env = {**os.environ, "BENCH_DATA": str(data), "BENCH_SCENARIO": scenario, "BENCH_QUERY": query}
    command = [
        "wrk",
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(ROOT / "bench" / "wrk.lua"),
        url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return Result(**json.loads(line.removeprefix("BENCH_RESULT ")))
    raise RuntimeError(f"wrk gave no result:\n{done.stdout}\n{done.stderr}")


def measure(
    url: str, scenario: str, data: Path, query: str = "", seconds: int = DURATION_S, connections: int = CONNECTIONS
) -> Result:
    if WARMUP_S:
        wrk(url, scenario, data, WARMUP_S, query, connections)
    return wrk(url, scenario, data, seconds, query, connections)


def compare(servers: list[Server], scenario: str, data: Path) -> list[Result]:
    """The same scenario on several servers, interleaved: after a warm-up of each, SLICES rounds of
    DURATION_S / SLICES seconds per server, the order alternating. On a shared, noisy machine this
    keeps a burst of someone else's load from landing on one side only.

    Throughput: all requests over all slices. p50/p99: the median over the slices. Errors: summed.
    CPU: what the server's process and its database's backends spent during its slices. Throughput
    moves with the neighbours' load; the CPU a request costs moves far less, and splits a gap
    into the framework's part (server) and the schema's (database).
    """
    if WARMUP_S:
        for server in servers:
            wrk(server.url, scenario, data, WARMUP_S)
    seconds = max(1, DURATION_S // SLICES)
    slices: list[list[Result]] = [[] for _ in servers]
    for round_ in range(SLICES):
        order = list(range(len(servers))) if round_ % 2 == 0 else list(reversed(range(len(servers))))
        for i in order:
            server = servers[i]
            server_before, database_before = cpu_seconds(server.proc.pid), database_cpu_seconds(server.database_url)
            result = wrk(server.url, scenario, data, seconds)
            result.server_cpu_s = cpu_seconds(server.proc.pid) - server_before
            database_after = database_cpu_seconds(server.database_url)
            if database_before is not None and database_after is not None:
                result.database_cpu_s = database_after - database_before
            slices[i].append(result)
    return [merge(results) for results in slices]


def merge(results: list[Result]) -> Result:
    def median(values: list[int]) -> int:
        ordered = sorted(values)
        return (
            ordered[len(ordered) // 2]
            if len(ordered) % 2
            else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) // 2
        )

    statuses: dict[str, int] = {}
    for r in results:
        for part in filter(None, r.statuses.split(",")):
            status, count = part.split(":")
            statuses[status] = statuses.get(status, 0) + int(count)
    return Result(
        requests=sum(r.requests for r in results),
        duration_us=sum(r.duration_us for r in results),
        p50_us=median([r.p50_us for r in results]),
        p90_us=median([r.p90_us for r in results]),
        p99_us=median([r.p99_us for r in results]),
        max_us=max(r.max_us for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        timeouts=sum(r.timeouts for r in results),
        bad_status=sum(r.bad_status for r in results),
        statuses=",".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
        server_cpu_s=sum(r.server_cpu_s for r in results),
        database_cpu_s=None
        if any(r.database_cpu_s is None for r in results)
        else sum(r.database_cpu_s or 0.0 for r in results),
    )


# --- report -------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


def busy_cores(seconds: float = 2.0) -> float:
    """How many cores other processes keep busy right now (sampled before anything of ours runs)."""

    def snapshot() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = snapshot()
        time.sleep(seconds)
        busy1, total1 = snapshot()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def index_report(
    url: str, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Per index of the service's schema: size, scans during the scenarios, and what it costs each
    kind of write (bench/indexes.py, on the 1,000-task user: with it against without it)."""
    from bench.indexes import SCHEMA, WRITE_KINDS, measure_writes, sample_tasks, schema_indexes, without

    sql = SqlFiles()
    rows = []
    with psycopg.connect(url, autocommit=True) as conn:
        tasks = sample_tasks(conn, "bench-big", 500)
        schema = measure_writes(conn, sql, SCHEMA, "bench-big", tasks)
        for name in schema_indexes(conn):
            lacking = measure_writes(conn, sql, without(name), "bench-big", tasks)
            costs = {
                kind: {
                    "us": schema[kind].us - lacking[kind].us,
                    "wal_bytes": schema[kind].wal_bytes - lacking[kind].wal_bytes,
                    "hot_with": schema[kind].hot_share,
                    "hot_without": lacking[kind].hot_share,
                }
                for kind in WRITE_KINDS
            }
            scans = after.get(name, (0, 0))[0] - before.get(name, (0, 0))[0]
            rows.append({"index": name, "size": after.get(name, (0, 0))[1], "scans": scans, "write_costs": costs})
    return rows


def print_summary(report: Report, results: dict[str, tuple[Result, Result, Result]]) -> bool:
    all_ok = True
    print()
    print(f"machine: {report.machine}; database: {report.database}")
    print(f"background load before the run (other processes): {report.background_busy_cores:.2f} cores busy")
    print(
        f"wrk: {CONNECTIONS} connections, {THREADS} threads; per scenario and server {WARMUP_S} s warm-up, then "
        f"{DURATION_S} s in {SLICES} interleaved slices (p50/p99: median over slices); 1 worker each"
    )
    print()
    print(
        f"reference: bench/reference_app.py on the service's schema (the framework's cost); minimal: the same "
        f"on {MINIMAL_DB}, whose tasks have only the primary key and one index (the schema's cost too)"
    )
    print(
        f"targets: service/minimal >= {TARGET_MINIMAL_RATIO}, service/reference >= {TARGET_RATIO}, "
        f"service p99 <= {TARGET_P99_MS:.0f} ms, no errors"
    )
    print()

    def cells(r: Result) -> str:
        return f"{r.rps:>7,.0f} {r.p50_ms:>6.2f} {r.p99_ms:>6.2f} {r.error_text():>4}"

    header = (
        f"{'scenario':<8} | {'service req/s  p50    p99  err':>30} | {'reference req/s p50  p99  err':>30} | "
        f"{'minimal req/s  p50    p99  err':>30} | {'/ref':>5} {'/min':>5} | {'load':>11} | targets"
    )
    print(header)
    print("-" * len(header))
    for scenario, (svc, ref, mini) in results.items():
        ratio = svc.rps / ref.rps if ref.rps else 0.0
        minimal_ratio = svc.rps / mini.rps if mini.rps else 0.0
        errors = svc.errors + ref.errors + mini.errors
        ok = (
            ratio >= TARGET_RATIO
            and minimal_ratio >= TARGET_MINIMAL_RATIO
            and svc.p99_ms <= TARGET_P99_MS
            and errors == 0
        )
        all_ok &= ok
        load = "-".join(report.scenarios[scenario]["loadavg"])
        print(
            f"{scenario:<8} | {cells(svc):>30} | {cells(ref):>30} | {cells(mini):>30} | "
            f"{ratio:>5.2f} {minimal_ratio:>5.2f} | {load:>11} | {mark(ok)}"
        )
    print()
    print(
        "CPU per request, µs (server process + its database backends; steadier than req/s on a shared "
        "machine): framework = service - reference (server), schema = reference - minimal (database)"
    )

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    for scenario, (svc, ref, mini) in results.items():
        schema = None if ref.database_us is None or mini.database_us is None else ref.database_us - mini.database_us
        print(
            f"  {scenario:<8} service {us(svc.server_us):>4} + {us(svc.database_us):>4}   "
            f"reference {us(ref.server_us):>4} + {us(ref.database_us):>4}   "
            f"minimal {us(mini.server_us):>4} + {us(mini.database_us):>4}   "
            f"framework {svc.server_us - ref.server_us:+5.0f}   schema {'-' if schema is None else f'{schema:+5.0f}'}"
        )
    hot_rows = [(s, v) for s, v in report.scenarios.items() if "hot" in v]
    if hot_rows:
        print()
        print("HOT updates (pg_stat_user_tables.n_tup_hot_upd / n_tup_upd during the scenario):")
        for scenario, values in hot_rows:

            def share(h: dict[str, Any]) -> str:
                return "-" if h["share"] is None else f"{h['share']:.0%} of {h['updates']:,}"

            for table in HOT_TABLES:
                print(
                    f"  {scenario:<8} {table:<6} service's schema {share(values['hot'][table]):>16}   "
                    f"minimal schema {share(values['minimal_hot'][table]):>16}"
                )
    if report.indexes:
        print()
        print(
            "Indexes of the service's schema besides the primary key: size, scans during the scenarios, and "
            "what each costs a write (WAL bytes per statement, with it minus without it, and the HOT share; "
            "the few rows here make server times noise: `just indexes` measures those)"
        )
        for row in report.indexes:
            costs = "; ".join(
                f"{kind} {c['wal_bytes']:+.0f} B"
                + ("" if c["hot_with"] is None else f" HOT {c['hot_with']:.0%} (without: {c['hot_without']:.0%})")
                for kind, c in row["write_costs"].items()
            )
            print(f"  {row['index']} ({row['size'] / 1e3:,.0f} kB, {row['scans']:,} scans): {costs}")
    if report.workers2:
        w = report.workers2
        ok = w["scaling"] >= TARGET_SCALING and w["errors"] == 0
        all_ok &= ok
        print()
        print(
            f"WORKERS=2 list: {w['rps']:,.0f} req/s (p50 {w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms, "
            f"errors {w['errors']}) = {w['scaling']:.2f}x of 1 worker ({w['one_worker_rps']:,.0f} req/s) "
            f"[target >= {TARGET_SCALING}x: {mark(ok)}]"
        )
    if report.scale:
        print()
        print("scale (service, 1 worker):")
        header = f"{'dataset':<44} {'request':<22} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
        print(header)
        print("-" * len(header))
        for row in report.scale["rows"]:
            print(
                f"{row['dataset']:<44} {row['request']:<22} {row['rps']:>8,.0f} {row['p50_ms']:>7.2f} "
                f"{row['p99_ms']:>7.2f} {row['errors']:>6}"
            )
            all_ok &= row["errors"] == 0
    for title, plan in report.explain.items():
        print()
        print(f"EXPLAIN on {title}:")
        print(plan)
    print()
    print("all targets met" if all_ok else "some targets missed (MISS above)")
    errors = sum(svc.errors + ref.errors + mini.errors for svc, ref, mini in results.values())
    errors += report.workers2.get("errors", 0) + sum(row["errors"] for row in report.scale.get("rows", []))
    if errors:
        print(f"ERRORS: {errors} requests failed (see the errors columns)")
    return errors == 0


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: wrk not found (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    wanted = os.environ.get("BENCH_SCENARIOS") or ",".join(SCENARIOS)
    chosen = [s.strip() for s in wanted.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        print(f"bench: unknown scenarios {sorted(unknown)}", file=sys.stderr)
        return 2
    reports_dir = ROOT / "reports"
    reports_dir.mkdir(exist_ok=True)
    started = time.monotonic()

    with postgres_server() as (server_url, database):
        report = Report(machine=machine(), database=database, duration_s=DURATION_S, connections=CONNECTIONS)
        report.background_busy_cores = busy_cores()
        log(f"{database}; preparing {BENCH_DB}: {USERS} users x {TASKS_PER_USER} tasks")
        bench_url = recreate_database(server_url, BENCH_DB)
        seed_bench(bench_url)
        minimal_url = recreate_database(server_url, MINIMAL_DB)
        minimal_schema(minimal_url)
        seed_bench(minimal_url)
        users = [f"bench-{i:03d}" for i in range(1, USERS + 1)]
        ids = user_task_ids(bench_url, [*users, "bench-big"])
        if user_task_ids(minimal_url, [*users, "bench-big"]) != ids:
            raise RuntimeError(f"{MINIMAL_DB} and {BENCH_DB} were seeded with different task ids")
        writers = [f"writer-{i:03d}" for i in range(1, USERS + 1)]
        data = write_lua_data(reports_dir / "bench-data.lua", {u: ids[u] for u in users}, writers)
        probe = token(users[0])

        results: dict[str, tuple[Result, Result, Result]] = {}
        scans_before = index_scans(bench_url)
        with (
            running("app.serve", bench_url, probe) as service,
            running("bench.reference_app", bench_url, probe) as reference,
            running("bench.reference_app", minimal_url, probe) as minimal,
        ):
            for scenario in chosen:
                vacuum(bench_url)
                vacuum(minimal_url)
                counters = update_counters(bench_url), update_counters(minimal_url)
                load = loadavg()
                log(f"{scenario}: service, reference and minimal reference, interleaved (load average {load})")
                svc, ref, mini = compare([service, reference, minimal], scenario, data)
                results[scenario] = (svc, ref, mini)
                report.scenarios[scenario] = {
                    "service": {**asdict(svc), "rps": svc.rps},
                    "reference": {**asdict(ref), "rps": ref.rps},
                    "minimal": {**asdict(mini), "rps": mini.rps},
                    "ratio": svc.rps / ref.rps if ref.rps else 0.0,
                    "minimal_ratio": svc.rps / mini.rps if mini.rps else 0.0,
                    "loadavg": [load, loadavg()],
                }
                if scenario in WRITE_SCENARIOS:
                    time.sleep(2)  # let the servers' backends report their counters
                    report.scenarios[scenario]["hot"] = hot_share(counters[0], update_counters(bench_url))
                    report.scenarios[scenario]["minimal_hot"] = hot_share(counters[1], update_counters(minimal_url))
            scans_after = index_scans(bench_url)

            if os.environ.get("BENCH_WORKERS2", "1") != "0":
                vacuum(bench_url)
                with running("app.serve", bench_url, probe, workers=2) as service2:
                    log("list: 1 worker and WORKERS=2, interleaved")
                    one, two = compare([service, service2], "list", data)
                report.workers2 = {
                    "rps": two.rps,
                    "p50_ms": two.p50_ms,
                    "p99_ms": two.p99_ms,
                    "errors": two.errors,
                    "one_worker_rps": one.rps,
                    "scaling": two.rps / one.rps if one.rps else 0.0,
                }

        log("per-index write costs")
        report.indexes = index_report(bench_url, scans_before, scans_after)
        if os.environ.get("BENCH_OBSERVABILITY", "1") != "0":
            run_observability(report, bench_url, probe, chosen, data)

        if os.environ.get("BENCH_SCALE", "1") != "0":
            run_scale(report, server_url, bench_url, users, ids, reports_dir)
        if os.environ.get("BENCH_ORGANIZING", "1") != "0":
            run_organizing(report, server_url, reports_dir)

    # Exit status: non-zero when a request failed; a missed target is reported, not a failure
    # (figures on a shared machine move with the neighbours' load).
    ok = print_summary(report, results)
    out = reports_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(asdict(report), indent=2))
    log(f"done in {time.monotonic() - started:.0f} s; results in {out.relative_to(ROOT)}")
    return 0 if ok else 1


# Everything an operator would turn on (metrics, one JSON access line per request at INFO), and off.
OBSERVABILITY_ON = {"METRICS_ENABLED": "true", "ACCESS_LOG": "true", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
OBSERVABILITY_OFF = {"METRICS_ENABLED": "false", "ACCESS_LOG": "false", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING"}
TARGET_OBSERVABILITY_COST = 0.03


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_observability(report: Report, bench_url: str, probe: str, scenarios: list[str], data: Path) -> None:
    """The cost of metrics and access logs: the same service (one worker) with them on and off,
    interleaved; compared by throughput and by server CPU per request."""
    with (
        running("app.serve", bench_url, probe, env=OBSERVABILITY_ON) as on,
        running("app.serve", bench_url, probe, env=OBSERVABILITY_OFF) as off,
    ):
        for scenario in scenarios:
            vacuum(bench_url)
            log(f"{scenario}: metrics and JSON access log on vs off, interleaved")
            with_, without = compare([on, off], scenario, data)
            cpu_on, cpu_off = with_.server_us, without.server_us
            cost = 1 - with_.rps / without.rps if without.rps else 0.0
            cpu_cost = cpu_on / cpu_off - 1 if cpu_off else 0.0
            report.observability[scenario] = {
                "on_rps": with_.rps,
                "off_rps": without.rps,
                "throughput_cost": cost,
                "on_cpu_us_per_request": cpu_on,
                "off_cpu_us_per_request": cpu_off,
                "cpu_cost": cpu_cost,
                "on_p99_ms": with_.p99_ms,
                "off_p99_ms": without.p99_ms,
                "errors": with_.errors + without.errors,
            }
            log(
                f"  on {with_.rps:,.0f} req/s {cpu_on:,.0f} µs CPU/request, off {without.rps:,.0f} req/s "
                f"{cpu_off:,.0f} µs CPU/request: throughput cost {cost:+.1%}, CPU cost {cpu_cost:+.1%} "
                f"{mark(cpu_cost <= TARGET_OBSERVABILITY_COST)} (target <= {TARGET_OBSERVABILITY_COST:.0%})"
            )


def run_scale(
    report: Report,
    server_url: str,
    bench_url: str,
    users: list[str],
    ids: dict[str, list[int]],
    reports_dir: Path,
) -> None:
    scale_s = max(3, DURATION_S // 2)
    rows: list[dict[str, Any]] = []

    def add(dataset: str, request: str, result: Result) -> None:
        rows.append(
            {
                "dataset": dataset,
                "request": request,
                "rps": result.rps,
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "errors": result.errors,
            }
        )

    small = reports_dir / "bench-data.lua"
    big = write_lua_data(reports_dir / "bench-data-big.lua", {"bench-big": ids["bench-big"]}, [])
    vacuum(bench_url)
    with running("app.serve", bench_url, token(users[0])) as service:
        for dataset, data in (
            (f"{USERS} users x {TASKS_PER_USER} tasks", small),
            (f"1 user with {BIG_USER_TASKS:,} tasks", big),
        ):
            log(f"scale: {dataset}")
            add(dataset, "list ?limit=20", measure(service.url, "list", data, "?limit=20", scale_s))
            add(dataset, "get", measure(service.url, "get", data, seconds=scale_s))
        log(f"scale: 1 user with {BIG_USER_TASKS:,} tasks, full list")
        full = measure(service.url, "list", big, "", scale_s)
        add(f"1 user with {BIG_USER_TASKS:,} tasks", "list (all 1,000)", full)
    report.explain[f"{BENCH_DB}, user with {BIG_USER_TASKS:,} tasks"] = explain(
        bench_url, "bench-big", ids["bench-big"][BIG_USER_TASKS // 2]
    )

    scale_url = scale_database(server_url)
    scale_users = [f"scale-{i}" for i in range(1, SCALE_USERS + 1, SCALE_USERS // 100)]
    scale_ids = user_task_ids(scale_url, scale_users)
    data = write_lua_data(reports_dir / "bench-data-scale.lua", scale_ids, [])
    dataset = f"{SCALE_TASKS:,} tasks, {SCALE_USERS:,} users (100 each)"
    with running("app.serve", scale_url, token(scale_users[0])) as service:
        log(f"scale: {dataset}")
        add(dataset, "list ?limit=20", measure(service.url, "list", data, "?limit=20", scale_s))
        add(dataset, "get", measure(service.url, "get", data, seconds=scale_s))
        add(dataset, "list (all 100)", measure(service.url, "list", data, "", scale_s))
    first = scale_users[len(scale_users) // 2]
    report.explain[f"{SCALE_DB}, {SCALE_TASKS:,} tasks"] = explain(scale_url, first, scale_ids[first][50])
    report.scale = {"rows": rows}


# --- organizing: the list's filters and sorts for a user with 50,000 tasks ----------------------------

ORGANIZING_DB = "tasks_bench_organizing"
ORGANIZING_USER = "bench-org"
ORGANIZING_TASKS = 50_000
NO_ORGANIZING: dict[str, Any] = {
    "priorities": None,
    "tags": None,
    "due_before": None,
    "due_after": None,
    "overdue": None,
}
# Each page of 20 (the query string) and the list statement's organizing parameters for EXPLAIN.
ORGANIZING_PAGES: dict[str, dict[str, Any]] = {
    "?limit=20": {},
    "?limit=20&tag=work": {"tags": ["work"]},
    "?limit=20&tag=tax": {"tags": ["tax"]},
    "?limit=20&priority=high": {"priorities": ["high"]},
    "?limit=20&overdue=true": {"overdue": True},
    "?limit=20&sort=due_at": {"sort": "due_at"},
    "?limit=20&sort=-due_at": {"sort": "-due_at"},
    "?limit=20&sort=priority": {"sort": "priority"},
    "?limit=20&tag=work&sort=due_at": {"tags": ["work"], "sort": "due_at"},
}
TARGET_ORGANIZING_P99_MS = 20.0
ORGANIZING_CONNECTIONS = env_int("BENCH_ORGANIZING_CONNECTIONS", 1)


def organizing_database(server_url: str) -> str:
    """A user with 50,000 tasks among 200 others with 100 each: priorities evenly, the tag `work` on
    1 in 4, `home` on 1 in 4, `tax` on 1 in 1,000, due dates on 3 in 4 over two years around now."""
    url = recreate_database(server_url, ORGANIZING_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, task_count) SELECT 'org-' || u, 100 FROM generate_series(1, 200) u"
            " UNION ALL SELECT %s, %s",
            (ORGANIZING_USER, ORGANIZING_TASKS),
        )
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, completed, created_at, priority, tags, tag_keys, due_at)
            SELECT CASE WHEN g <= %(big)s THEN %(user)s ELSE 'org-' || (g %% 200 + 1) END,
                   format('%%s task %%s', left(md5(g::text), 8), g), NULL, g %% 10 < 3,
                   now() - (70000 - g) * interval '1 minute',
                   (ARRAY['none', 'low', 'medium', 'high'])[(g * 7 %% 4) + 1]::task_priority,
                   k.keys, k.keys,
                   CASE WHEN g %% 4 <> 3 THEN now() + ((g * 7919 %% 730) - 365) * interval '1 day' END
            FROM generate_series(1, %(big)s + 20000) g,
                 LATERAL (SELECT array_remove(ARRAY[CASE WHEN g %% 4 = 1 THEN 'work' END,
                                                    CASE WHEN (g / 4) %% 4 = 2 THEN 'home' END,
                                                    CASE WHEN g %% 1000 = 7 THEN 'tax' END], NULL) AS keys) k
            """,
            {"big": ORGANIZING_TASKS, "user": ORGANIZING_USER},
        )
        conn.execute("VACUUM ANALYZE tasks")
    return url


def explain_organizing(url: str, given: dict[str, Any]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the page as the service runs it: list.sql unprepared (a plan for
    these values), or list_newest.sql when nothing of it applies."""
    params: dict[str, Any] = {
        "user_id": ORGANIZING_USER,
        "completed": None,
        "pattern": None,
        "sort": "-created_at",
        "limit": 21,
        "offset": 0,
        **NO_CURSOR,
        **NO_ORGANIZING,
        **given,
    }
    name = "list_newest" if not given else "list"
    query = (ROOT / "sql" / "tasks" / f"{name}.sql").read_bytes()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, params, prepare=False).fetchall()
    return "\n".join(r[0] for r in rows)


def run_organizing(report: Report, server_url: str, reports_dir: Path) -> None:
    """Pages of 20 with the organizing filters and sorts for the 50,000-task user, over HTTP (wrk),
    and their plans."""
    log(f"organizing: building {ORGANIZING_DB} ({ORGANIZING_TASKS:,}-task user)")
    url = organizing_database(server_url)
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM tasks WHERE user_id = %s LIMIT 100", (ORGANIZING_USER,))]
    data = write_lua_data(reports_dir / "bench-data-organizing.lua", {ORGANIZING_USER: ids}, [])
    seconds = max(3, DURATION_S // 2)
    with running("app.serve", url, token(ORGANIZING_USER)) as service:
        for query, given in ORGANIZING_PAGES.items():
            log(f"organizing: list {query}")
            # One connection: the latency of a page by itself (32 connections on one worker measure
            # the queue in front of it: throughput, not the page's cost).
            result = measure(service.url, "list", data, query, seconds, connections=ORGANIZING_CONNECTIONS)
            report.organizing.append(
                {
                    "request": query,
                    "rps": result.rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "errors": result.errors,
                }
            )
            report.explain[f"{ORGANIZING_DB}, {query}"] = explain_organizing(url, given)
    print(
        f"\nOrganizing: pages of 20 for a user with {ORGANIZING_TASKS:,} tasks, {ORGANIZING_CONNECTIONS} connection(s)"
        f" (target p99 <= {TARGET_ORGANIZING_P99_MS} ms)"
    )
    print(f"{'request':<36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for row in report.organizing:
        print(f"{row['request']:<36} {row['rps']:>8.0f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>6}")
    for query in ORGANIZING_PAGES:
        print(f"\n-- EXPLAIN (ANALYZE, BUFFERS) {query}\n{report.explain[f'{ORGANIZING_DB}, {query}']}")


if __name__ == "__main__":
    raise SystemExit(main())
