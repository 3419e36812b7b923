"""Database faults, provoked for real on a PostgreSQL these tests start, stop, crash and lock.

Promises: 503 `SERVICE_UNAVAILABLE` (with `Retry-After`) quickly, never a hang or a 500; recovery
by itself; nothing acknowledged is lost (SIGTERM included); concurrent writes are neither lost
nor duplicated.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from assertions import assert_error
from conftest import SECRET, LiveServer, User
from harness import ServerProcess, wait_until

from app.config import Settings
from app.embedded_pg import EmbeddedPostgres
from app.health import READY_TIMEOUT_S
from app.migrate import apply

POOL_TIMEOUT_S = 2.0
OUTAGE_S = 17.0
RECOVERY_S = 5.0  # "within seconds"


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this module's own: the tests stop, restart and crash it."""
    with EmbeddedPostgres(tmp_path_factory.mktemp("faults") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def fault_db(pg: EmbeddedPostgres) -> str:
    url = pg.create_database("tasks_faults")
    apply(url)
    return url


@pytest.fixture(autouse=True)
def running(pg: EmbeddedPostgres) -> Iterator[None]:
    """Whatever a test did to the server, the next one finds it up."""
    pg.start()
    yield
    pg.start()


@pytest.fixture(scope="module")
def fault_settings(fault_db: str) -> Settings:
    return Settings.from_mapping(
        {
            "DATABASE_URL": fault_db,
            "JWT_SECRET": SECRET,
            "DB_POOL_MIN_SIZE": "2",
            "DB_POOL_MAX_SIZE": "8",
            "DB_POOL_TIMEOUT_S": str(POOL_TIMEOUT_S),
        }
    )


@pytest.fixture(scope="module")
def api(serve: Callable[[Settings], LiveServer], fault_settings: Settings) -> LiveServer:
    return serve(fault_settings)


def direct(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def waiting_on_locks(url: str) -> int:
    """How many of the API's statements are waiting for a lock right now."""
    with direct(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tasks-api' AND wait_event_type = 'Lock'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def create(http: httpx.Client, user: User, title: str = "task") -> dict[str, Any]:
    response = http.post("/api/tasks", json={"title": title}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


# --- database down ------------------------------------------------------------------------------


def test_database_down_answers_503_quickly_and_recovers_by_itself(api: LiveServer, pg: EmbeddedPostgres) -> None:
    user = User()
    with httpx.Client(base_url=api.url, timeout=30) as http:
        task = create(http, user)
        pg.stop()
        down_at = time.monotonic()
        calls: list[tuple[str, str, dict[str, Any] | None]] = [
            ("GET", "/api/tasks", None),
            ("POST", "/api/tasks", {"title": "while down"}),
            ("GET", f"/api/tasks/{task['id']}", None),
            ("PUT", f"/api/tasks/{task['id']}", {"title": "renamed while down"}),
            ("PATCH", f"/api/tasks/{task['id']}/complete", None),
            ("DELETE", f"/api/tasks/{task['id']}", None),
            ("GET", "/api/events", None),
            ("POST", "/api/events/ticket", None),
        ]
        for method, path, body in calls:
            started = time.monotonic()
            response = http.request(method, path, json=body, headers=user.headers)
            elapsed = time.monotonic() - started
            assert_error(response, 503)
            assert elapsed < POOL_TIMEOUT_S + 1, (method, path, elapsed)

        assert http.get("/health").status_code == 200
        started = time.monotonic()
        assert_error(http.get("/health/ready"), 503)
        assert time.monotonic() - started < READY_TIMEOUT_S + 1

        # A longer outage, with traffic, as in real life. psycopg's pool would by now retry a lost
        # connection only every 16, then 32 seconds; the service must not wait that long.
        while time.monotonic() - down_at < OUTAGE_S:
            assert_error(http.get("/api/tasks", headers=user.headers), 503)
        assert http.get("/health").status_code == 200

        pg.start()
        recovered_in = wait_until(
            lambda: http.get("/api/tasks", headers=user.headers).status_code == 200,
            timeout=40,
            what="recovery",
        )
        assert recovered_in < RECOVERY_S
        assert http.get("/health/ready").status_code == 200
        # Nothing that was answered 503 took effect.
        assert http.get(f"/api/tasks/{task['id']}", headers=user.headers).json()["data"] == task
        titles = [t["title"] for t in http.get("/api/tasks", headers=user.headers).json()["data"]]
        assert titles == ["task"]


# --- restarts under traffic ---------------------------------------------------------------------


class Traffic:
    """Threads that keep creating, listing and toggling, recording every outcome."""

    def __init__(self, url: str, workers: int = 8) -> None:
        self.url = url
        self.workers = workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: list[tuple[float, str, int]] = []  # (time, operation, status)
        self.created: list[tuple[str, int]] = []  # (user id, task id) for every 201
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _record(self, operation: str, status: int) -> None:
        with self.lock:
            self.outcomes.append((time.monotonic(), operation, status))

    def _run(self) -> None:
        user = User()
        try:
            with httpx.Client(base_url=self.url, timeout=30, headers=user.headers) as http:
                own: list[int] = []
                n = 0
                while not self.stop.is_set():
                    n += 1
                    response = http.post("/api/tasks", json={"title": f"traffic {n}"})
                    self._record("create", response.status_code)
                    if response.status_code == 201:
                        task_id = response.json()["data"]["id"]
                        own.append(task_id)
                        with self.lock:
                            self.created.append((user.id, task_id))
                    self._record("list", http.get("/api/tasks", params={"limit": 5}).status_code)
                    if own:
                        self._record("toggle", http.patch(f"/api/tasks/{own[-1]}/complete").status_code)
        except BaseException as exc:  # a reset connection or a hang would land here
            with self.lock:
                self.errors.append(exc)

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


@pytest.mark.parametrize("fault", ["restart", "crash"])
def test_database_restart_under_traffic_no_500_and_service_resumes(
    api: LiveServer, pg: EmbeddedPostgres, fault_db: str, fault: str
) -> None:
    with Traffic(api.url) as traffic:
        time.sleep(1.0)
        if fault == "restart":
            pg.restart()
        else:
            pg.kill()
            pg.start()
        back_at = time.monotonic()
        time.sleep(4.0)
    assert not traffic.errors, traffic.errors[:3]
    statuses = Counter(status for _, _, status in traffic.outcomes)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[201] > 0 and statuses[200] > 0
    # Resumed within seconds: every operation succeeds again soon after the database is back.
    first_ok_after = min(t for t, _, status in traffic.outcomes if t > back_at and status in (200, 201))
    assert first_ok_after - back_at < 3
    late = [status for t, _, status in traffic.outcomes if t > back_at + 3]
    assert late and all(status in (200, 201) for status in late), Counter(late)
    # Every acknowledged create is stored.
    with direct(fault_db) as conn:
        stored = set(conn.execute("SELECT user_id, id FROM tasks").fetchall())
    assert set(traffic.created) <= stored


# --- pool exhausted, statement timeout ------------------------------------------------------------


@pytest.fixture
def locked_task(fault_db: str) -> Callable[..., Any]:
    """Lock a task's row (or the whole table) from a connection of our own, until released."""
    holders: list[psycopg.Connection[Any]] = []

    def lock(task_id: int | None = None) -> Callable[[], None]:
        conn = psycopg.connect(fault_db, connect_timeout=5)
        holders.append(conn)
        if task_id is None:
            conn.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
        else:
            conn.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        return conn.commit

    yield lock
    for conn in holders:
        conn.close()


def test_an_exhausted_pool_answers_503_and_recovers(
    serve: Callable[[Settings], LiveServer],
    fault_settings: Settings,
    fault_db: str,
    locked_task: Callable[..., Any],
) -> None:
    one = serve(fault_settings.with_(db_pool_min_size=1, db_pool_max_size=1, db_pool_timeout_s=1.0))
    user = User()
    with httpx.Client(base_url=one.url, timeout=30, headers=user.headers) as http:
        task = create(http, user)
        release = locked_task(task["id"])
        with ThreadPoolExecutor(1) as pool:
            # This toggle waits for the row lock, holding the pool's only connection.
            blocked = pool.submit(http.patch, f"/api/tasks/{task['id']}/complete")
            wait_until(lambda: waiting_on_locks(fault_db) == 1, timeout=10, what="a blocked statement")
            started = time.monotonic()
            response = http.get("/api/tasks")
            assert_error(response, 503)
            assert time.monotonic() - started < 1.0 + 1
            assert_error(http.get("/health/ready"), 503)
            release()
            assert blocked.result(timeout=10).status_code == 200
        assert http.get("/api/tasks").status_code == 200
        assert http.get("/health/ready").status_code == 200
        assert http.get(f"/api/tasks/{task['id']}").json()["data"]["completed"] is True


def test_a_statement_past_the_timeout_is_cancelled_with_503_and_the_pool_stays_healthy(
    serve: Callable[[Settings], LiveServer],
    fault_settings: Settings,
    fault_db: str,
    locked_task: Callable[..., Any],
) -> None:
    timeout_ms = 500
    fast = serve(fault_settings.with_(db_statement_timeout_ms=timeout_ms, db_pool_max_size=2))
    user = User()
    with httpx.Client(base_url=fast.url, timeout=30, headers=user.headers) as http:
        task = create(http, user)
        release = locked_task(task["id"])
        for _ in range(3):  # more than the pool's connections: each one is returned healthy
            started = time.monotonic()
            assert_error(http.patch(f"/api/tasks/{task['id']}/complete"), 503)
            assert timeout_ms / 1000 <= time.monotonic() - started < timeout_ms / 1000 + 1.5
        assert waiting_on_locks(fault_db) == 0  # cancelled in the database, not just abandoned
        release()

        release_table = locked_task()  # reads wait too
        assert_error(http.get("/api/tasks"), 503)
        release_table()

        for _ in range(5):
            assert http.get("/api/tasks").status_code == 200
        toggled = http.patch(f"/api/tasks/{task['id']}/complete")
        assert toggled.status_code == 200
        assert toggled.json()["data"]["completed"] is True  # the cancelled toggles did nothing


# --- SIGTERM with requests in flight ----------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_in_flight_requests_finish_and_loses_no_acknowledged_write(
    fault_db: str, tmp_path: Path, locked_task: Callable[..., Any], workers: int
) -> None:
    env = {
        "DATABASE_URL": fault_db,
        "JWT_SECRET": SECRET,
        "DB_STATEMENT_TIMEOUT_MS": "30000",
        "WORKERS": str(workers),
    }
    user = User()
    with ServerProcess(env, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=30, headers=user.headers) as http:
            task = create(http, user)
        release = locked_task()  # every statement on tasks waits: requests stay in flight

        def send(index: int) -> httpx.Response:
            with httpx.Client(base_url=server.url, timeout=60, headers=user.headers) as own:
                if index % 2:
                    return own.patch(f"/api/tasks/{task['id']}/complete")
                return own.post("/api/tasks", json={"title": f"in flight {index}"})

        in_flight = 6
        with ThreadPoolExecutor(in_flight) as pool:
            futures = [pool.submit(send, i) for i in range(in_flight)]
            wait_until(lambda: waiting_on_locks(fault_db) == in_flight, timeout=15, what="in flight")
            server.terminate()
            if workers == 1:
                # Shutting down: new connections are refused, the in-flight ones keep going.
                # (With workers, the supervisor holds the listening socket until they are done.)
                wait_until(lambda: _refused(server.url), timeout=5, what="listener closed")
            else:
                time.sleep(1.0)  # the workers have the signal and are shutting down
            release()
            responses = [future.result(timeout=30) for future in futures]
        assert server.wait(timeout=15) == 0, server.output()
    assert [r.status_code for r in responses] == [201 if i % 2 == 0 else 200 for i in range(in_flight)]
    with direct(fault_db) as conn:
        titles = {row[0] for row in conn.execute("SELECT title FROM tasks WHERE user_id = %s", (user.id,))}
        completed = conn.execute("SELECT completed FROM tasks WHERE id = %s", (task["id"],)).fetchone()
    assert {f"in flight {i}" for i in range(0, in_flight, 2)} <= titles
    assert completed == (True,)  # three toggles, all applied
    assert "Traceback" not in server.output()


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=1)
    except httpx.ConnectError:
        return True
    return False


# --- concurrency ----------------------------------------------------------------------------------


def test_simultaneous_toggles_of_one_task_are_never_lost(live: LiveServer, db: psycopg.Connection[Any]) -> None:
    toggles = 48
    user = User()
    limits = httpx.Limits(max_connections=toggles)
    with httpx.Client(base_url=live.url, timeout=30, headers=user.headers, limits=limits) as http:
        task = create(http, user)
        barrier = threading.Barrier(toggles)

        def toggle(_: int) -> httpx.Response:
            barrier.wait()
            return http.patch(f"/api/tasks/{task['id']}/complete")

        with ThreadPoolExecutor(toggles) as pool:
            responses = list(pool.map(toggle, range(toggles)))
    assert [r.status_code for r in responses] == [200] * toggles
    results = sorted((r.json()["data"]["updated_at"], r.json()["data"]["completed"]) for r in responses)
    # Serialized by the row lock: each toggle saw the previous one's result, so they alternate.
    assert [completed for _, completed in results] == [i % 2 == 0 for i in range(toggles)]
    assert len({updated_at for updated_at, _ in results}) == toggles
    stored = db.execute("SELECT completed FROM tasks WHERE id = %s", (task["id"],)).fetchone()
    assert stored == (toggles % 2 == 1,)


def test_hundreds_of_simultaneous_creates_are_all_stored_once(live: LiveServer, db: psycopg.Connection[Any]) -> None:
    users = [User() for _ in range(30)]
    per_user = 10
    jobs = [(user, n) for user in users for n in range(per_user)]
    limits = httpx.Limits(max_connections=64)
    with httpx.Client(base_url=live.url, timeout=60, limits=limits) as http:

        def create_one(job: tuple[User, int]) -> httpx.Response:
            user, n = job
            return http.post("/api/tasks", json={"title": f"{user.id} #{n}"}, headers=user.headers)

        with ThreadPoolExecutor(64) as pool:
            responses = list(pool.map(create_one, jobs))
    assert [r.status_code for r in responses] == [201] * len(jobs)
    ids = [r.json()["data"]["id"] for r in responses]
    assert len(set(ids)) == len(jobs)
    rows = db.execute("SELECT user_id, title FROM tasks WHERE user_id = ANY(%s)", ([u.id for u in users],)).fetchall()
    assert sorted(rows) == sorted((user.id, f"{user.id} #{n}") for user, n in jobs)
    user_rows = db.execute("SELECT count(*) FROM users WHERE id = ANY(%s)", ([u.id for u in users],)).fetchone()
    assert user_rows == (len(users),)
