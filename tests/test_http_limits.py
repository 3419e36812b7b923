"""Connection limits, against `python -m app.serve` (the real uvicorn + protocol) over real sockets.

Each hostile client runs bounded in time and count. While it runs, a victim (another user) keeps
calling `/health` and listing its tasks: its p99 must stay under 50 ms, the worker's RSS under
300 MB, and the database must not change. The server runs with small limits (1 s deadlines) so
that each case takes seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from assertions import ERROR_CODES, nothing_changes
from conftest import SECRET, User, scratch_database
from harness import ServerProcess, wait_until

READ_TIMEOUT_S = 1.0
IDLE_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 120
MAX_HEADER_BYTES = 65_536  # the default
MAX_BODY_BYTES = 1_048_576  # the default
P99_LIMIT_S = 0.050
RSS_LIMIT_BYTES = 300 * 1024 * 1024
MIN_SAMPLES = 400


@pytest.fixture(scope="module")
def limits_db(server_url: str) -> Iterator[str]:
    # A database of this module's own: the big-response case stores megabytes of tasks.
    with scratch_database(server_url, "tasks_limits", migrate=True) as url:
        yield url


@pytest.fixture(scope="module")
def server(limits_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "DATABASE_URL": limits_db,
        "JWT_SECRET": SECRET,
        "HTTP_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "HTTP_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        "HTTP_WRITE_TIMEOUT_S": str(WRITE_TIMEOUT_S),
        "HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with ServerProcess(env, tmp_path_factory.mktemp("limits") / "server.log") as process:
        yield process


@pytest.fixture
def db(limits_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(limits_db, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def victim(server: ServerProcess) -> User:
    """Another user, with tasks of their own to list while the attacks run."""
    user = User()
    with httpx.Client(base_url=server.url, headers=user.headers) as http:
        for i in range(20):
            assert http.post("/api/tasks", json={"title": f"victim {i}"}).status_code == 201
    return user


# --- measuring the worker and the victim ------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The victim runs in a process of its own: in the test's process it would also measure the wait for
# the GIL behind the attacking code.
VICTIM = """
import json, select, sys, time
import httpx
url, token, least = sys.argv[1], sys.argv[2], int(sys.argv[3])
latencies, failures = [], []
with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as http:
    while len(latencies) < least or not select.select([sys.stdin], [], [], 0)[0]:
        for path in ("/health", "/api/tasks?limit=20"):
            start = time.perf_counter()
            try:
                status = http.get(path).status_code
            except httpx.HTTPError as exc:
                failures.append(f"{path}: {exc!r}")
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append(f"{path}: {status}")
        time.sleep(0.01)
print(json.dumps({"latencies": latencies, "failures": failures}))
"""


class Watch:
    """While an attack runs: the victim's request latencies and the worker's peak RSS."""

    def __init__(self, server: ServerProcess, victim: User, p99_limit_s: float = P99_LIMIT_S) -> None:
        assert server.process is not None
        self.p99_limit_s = p99_limit_s
        self.pid = server.process.pid
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.peak_rss = rss_bytes(self.pid)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._victim = subprocess.Popen(
            [sys.executable, "-c", VICTIM, server.url, victim.token, str(MIN_SAMPLES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def _sample_rss(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # The victim goes on until it has enough samples for a p99, however quickly the attack ended.
        out, _ = self._victim.communicate(b"stop", timeout=30)
        self._stop.set()
        self._sampler.join(timeout=5)
        result = json.loads(out)
        self.latencies, self.failures = result["latencies"], result["failures"]

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def assert_unharmed(self) -> None:
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= MIN_SAMPLES, "the victim barely ran"
        slowest = [round(t * 1000) for t in sorted(self.latencies)[-8:]]
        assert self.p99() < self.p99_limit_s, (
            f"victim p99 {self.p99() * 1000:.1f} ms over {len(self.latencies)}; {slowest}"
        )
        assert self.peak_rss < RSS_LIMIT_BYTES, f"worker RSS peaked at {self.peak_rss / 2**20:.0f} MB"


@pytest.fixture(scope="module")
def p99_limit(server: ServerProcess, victim: User) -> float:
    """50 ms; on a machine so loaded that the victim's p99 *without* any attack is above 25 ms,
    twice that quiet p99 (measured here, in the same run), so the test still tells an attack's
    harm from the neighbours' load."""
    with Watch(server, victim) as quiet:
        pass
    return max(P99_LIMIT_S, 2 * quiet.p99())


@pytest.fixture
def watch(server: ServerProcess, victim: User, db: psycopg.Connection[Any], p99_limit: float) -> Iterator[Watch]:
    """Runs the victim around the test's attack, then checks it and that the database is unchanged."""
    with nothing_changes(db), Watch(server, victim, p99_limit) as watching:
        yield watching
    watching.assert_unharmed()


# --- raw sockets ------------------------------------------------------------------------------------


def connect(server: ServerProcess, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def read_all(sock: socket.socket, timeout: float = 5) -> tuple[bytes, bool]:
    """Everything until the server closes: (bytes, closed); a reset counts as closed."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        return received, True
    except TimeoutError:
        return received, False
    return received, True


def assert_raw_error(response: bytes, status: int) -> None:
    """A response written below the app: the envelope, and `Connection: close`."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == ERROR_CODES[status]


def read_response(reader: Any) -> tuple[int, bytes]:
    """One response with a Content-Length from a socket's file: (status, body)."""
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def stream(sock: socket.socket, first: bytes, filler: bytes, most: int, seconds: float) -> int:
    """Send `first`, then `filler` again and again (up to `most` bytes or `seconds`); bytes sent."""
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        sock.sendall(first)
        sent = len(first)
        while sent < most and time.monotonic() < deadline:
            sock.sendall(filler)
            sent += len(filler)
    except OSError:  # reset, broken pipe, or the send timed out: the server stopped reading
        pass
    return sent


def _token() -> str:
    return User().token


# --- request head: size cap -------------------------------------------------------------------------

HEAD_ATTEMPT = 256 * 1024 * 1024
# What the server may read before cutting a head off: the cap, one read, the bounded lingering
# (1 MiB), and what the kernel buffers on both sides of a loopback connection.
HEAD_READ_BOUND = 32 * 1024 * 1024
# Each attack is repeated (bounded) so that the victim is measured while it goes on.
ATTACK_ROUNDS = 5


@pytest.mark.parametrize(
    "first",
    [
        b"GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Huge: ",
        b"GET /api/tasks?q=",
        b"GET /",
    ],
    ids=["header value", "query string", "path"],
)
def test_a_head_streamed_past_the_cap_is_cut_off_not_parsed(server: ServerProcess, watch: Watch, first: bytes) -> None:
    assert server.process is not None
    cpu_before = cpu_seconds(server.process.pid)
    for _ in range(ATTACK_ROUNDS):
        with connect(server, timeout=3) as sock:
            sent = stream(sock, first, b"a" * 65536, HEAD_ATTEMPT, seconds=8)
            response, closed = read_all(sock, timeout=5)
        assert sent < HEAD_READ_BOUND, f"the server read {sent / 2**20:.0f} MB of one request head"
        assert closed
        if response:
            assert_raw_error(response, 431)
    # Parsing one 256 MB head took a minute of CPU; cutting each off at 64 KiB takes next to nothing.
    assert cpu_seconds(server.process.pid) - cpu_before < 1.0


def test_a_head_just_over_the_cap_gets_a_431_envelope(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")
        response, closed = read_all(sock)
    assert closed
    assert_raw_error(response, 431)


def test_a_head_under_the_cap_is_served(server: ServerProcess) -> None:
    filler = "a" * (MAX_HEADER_BYTES - 2048)
    response = httpx.get(f"{server.url}/health", headers={"X-Big": filler})
    assert response.status_code == 200


def test_a_head_in_many_reads_is_counted_whole(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(12):
            sock.sendall(b"X-Part: " + b"b" * 8000 + b"\r\n")
            time.sleep(0.01)
        sock.sendall(b"\r\n")
        response, _ = read_all(sock)
    assert_raw_error(response, 431)


# --- read deadline ----------------------------------------------------------------------------------


def test_bodies_that_never_complete_are_dropped_after_the_read_timeout(server: ServerProcess, watch: Watch) -> None:
    socks = []
    started = time.monotonic()
    for _ in range(40):
        sock = connect(server)
        body = b'{"email": "a@example.com", "password": "' + b"x" * 900
        sock.sendall(
            b"POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (len(body) + 100) + body
        )
        socks.append(sock)
    try:
        for sock in socks:
            response, closed = read_all(sock, timeout=READ_TIMEOUT_S + 3)
            assert closed
            assert_raw_error(response, 408)
    finally:
        for sock in socks:
            sock.close()
    assert time.monotonic() - started < READ_TIMEOUT_S + 3


def test_many_slow_big_bodies_are_held_within_the_worker_s_body_budget(server: ServerProcess, watch: Watch) -> None:
    """100 sockets each send a 1 MiB sign-in body but its last byte: the worker holds at most
    PENDING_BODY_BUDGET of them (the others get a 503 at once), and drops the rest at the deadline."""
    body = b'{"email": "a@example.com", "password": "' + b"x" * (MAX_BODY_BYTES - 100)
    head = (
        b"POST /api/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (len(body) + 1)
    )
    socks = []
    statuses: list[int] = []
    try:
        for _ in range(100):
            sock = connect(server)
            with contextlib.suppress(OSError):  # already answered and closed
                sock.sendall(head + body)
            socks.append(sock)
        for sock in socks:
            response, closed = read_all(sock, timeout=READ_TIMEOUT_S + 5)
            assert closed
            statuses.append(int(response.split(b" ", 2)[1]) if response else 0)
    finally:
        for sock in socks:
            sock.close()
    assert set(statuses) <= {408, 503, 0}, statuses
    assert statuses.count(408) >= 30 and statuses.count(503) >= 10, statuses


def test_a_head_trickled_byte_by_byte_is_dropped_after_the_read_timeout(server: ServerProcess, watch: Watch) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        try:
            for _ in range(int(4 * READ_TIMEOUT_S / 0.1)):
                sock.sendall(b"X: 1\r\n")  # always more, never the end of the head
                time.sleep(0.1)
                if select.select([sock], [], [], 0)[0]:
                    break
        except OSError:
            pass
        response, closed = read_all(sock)
        elapsed = time.monotonic() - started
    assert closed
    assert_raw_error(response, 408)
    assert READ_TIMEOUT_S - 0.1 < elapsed < READ_TIMEOUT_S + 1.5


def test_a_slow_but_steady_request_within_the_deadline_is_served(server: ServerProcess) -> None:
    user = User()
    body = json.dumps({"title": "slow but fine"}).encode()
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (user.token.encode(), len(body))
        )
        for byte in body[:-1]:
            sock.sendall(bytes([byte]))
            time.sleep(READ_TIMEOUT_S / 3 / len(body))
        sock.sendall(body[-1:])
        status_line = sock.recv(65536).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 201"), status_line


# --- idle sockets and the connection cap ------------------------------------------------------------


def test_idle_sockets_are_closed_after_the_idle_timeout(server: ServerProcess, watch: Watch) -> None:
    socks = [connect(server) for _ in range(60)]
    try:
        started = time.monotonic()
        for sock in socks:
            response, closed = read_all(sock, timeout=IDLE_TIMEOUT_S + 3)
            assert closed and response == b""
        assert time.monotonic() - started < IDLE_TIMEOUT_S + 2
    finally:
        for sock in socks:
            sock.close()


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock.makefile("rb"))[0] == 200
        started = time.monotonic()
        rest, closed = read_all(sock, timeout=IDLE_TIMEOUT_S + 3)
    assert closed and rest == b""
    assert IDLE_TIMEOUT_S - 0.1 < time.monotonic() - started < IDLE_TIMEOUT_S + 1


def test_connections_beyond_the_cap_get_a_503_and_are_closed(server: ServerProcess) -> None:
    socks = [connect(server) for _ in range(MAX_CONNECTIONS + 15)]
    try:
        refused = 0
        for sock in socks[MAX_CONNECTIONS:]:
            response, closed = read_all(sock, timeout=1)
            assert closed
            assert_raw_error(response, 503)
            refused += 1
        assert refused == 15
    finally:
        for sock in socks:
            sock.close()
    # Closed sockets free their places at once.
    wait_until(lambda: httpx.get(f"{server.url}/health").status_code == 200, timeout=3, what="served again")


# --- responses the client does not read -------------------------------------------------------------

BIG_PAGE_TASKS = 1000
BIG_DESCRIPTION = 5000
# Each client makes the server build a 5 MB page (the CPU of that is the page's, not an attack's).
UNREAD_CLIENTS = 8


@pytest.fixture(scope="module")
def hoarder(limits_db: str) -> User:
    """A user whose full list page is about 5 MB."""
    user = User()
    with psycopg.connect(limits_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES (%s)", (user.id,))
        conn.execute(
            "INSERT INTO tasks (user_id, title, description) "
            "SELECT %s, 'big ' || n, repeat('d', %s) FROM generate_series(1, %s) AS n",
            (user.id, BIG_DESCRIPTION, BIG_PAGE_TASKS),
        )
    return user


def test_big_responses_nobody_reads_are_abandoned_after_the_write_timeout(
    server: ServerProcess, hoarder: User, victim: User, db: psycopg.Connection[Any], p99_limit: float
) -> None:
    """Building a 5 MB page costs its CPU whoever asks; what the write timeout bounds is the holding
    of it for a client that does not read. So the victim is measured while the pages are held."""
    assert server.process is not None
    request = b"GET /api/tasks?limit=%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (
        BIG_PAGE_TASKS,
        hoarder.token.encode(),
    )
    page_bytes = BIG_PAGE_TASKS * BIG_DESCRIPTION
    after_rounds = []
    with nothing_changes(db):
        for _ in range(3):  # rounds: memory is given back, not piled up
            socks = []
            try:
                for _ in range(UNREAD_CLIENTS):
                    sock = socket.socket()
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    sock.settimeout(5)
                    sock.connect(("127.0.0.1", server.port))
                    sock.sendall(request)
                    assert sock.recv(1) == b"H"  # the page is built and being sent; now stop reading
                    socks.append(sock)
                with Watch(server, victim, p99_limit) as watching:
                    time.sleep(WRITE_TIMEOUT_S + 0.5)
                watching.assert_unharmed()
                for sock in socks:
                    received, closed = read_all(sock, timeout=3)
                    assert closed, "the server still holds a response nobody reads"
                    assert len(received) < page_bytes
            finally:
                for sock in socks:
                    sock.close()
            after_rounds.append(rss_bytes(server.process.pid))
    assert after_rounds[-1] < after_rounds[0] + 30 * 1024 * 1024, [r // 2**20 for r in after_rounds]
    assert "Response not read within" in server.output()


def test_many_unread_pages_are_held_within_the_worker_s_write_budget(
    limits_db: str, hoarder: User, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Up to 40 unread 5 MB pages at once, with the default 30 s write timeout: beyond
    STALLED_WRITE_BUDGET they are dropped at once."""
    env = {"DATABASE_URL": limits_db, "JWT_SECRET": SECRET}
    with ServerProcess(env, tmp_path / "server.log") as server:
        _unread_pages_within_budget(server, hoarder, db)


def _unread_pages_within_budget(server: ServerProcess, hoarder: User, db: psycopg.Connection[Any]) -> None:
    assert server.process is not None
    request = b"GET /api/tasks?limit=%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (
        BIG_PAGE_TASKS,
        hoarder.token.encode(),
    )
    peak = 0
    socks = []
    with nothing_changes(db):
        try:
            for _ in range(40):  # as many as it takes, within bounds
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(5)
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(request)
                sock.recv(1)
                socks.append(sock)
                peak = max(peak, rss_bytes(server.process.pid))
                if "Too many unread responses held" in server.output():
                    break
            # Dropped long before the write timeout.
            assert "Too many unread responses held" in server.output()
        finally:
            for sock in socks:
                sock.close()
    assert peak < RSS_LIMIT_BYTES, f"worker RSS peaked at {peak / 2**20:.0f} MB"


def test_a_big_response_read_steadily_is_delivered_whole(server: ServerProcess, hoarder: User) -> None:
    response = httpx.get(f"{server.url}/api/tasks?limit={BIG_PAGE_TASKS}", headers=hoarder.headers, timeout=30)
    assert response.status_code == 200
    assert len(response.json()["data"]) == BIG_PAGE_TASKS


# --- uploads answered early -------------------------------------------------------------------------


def test_an_endless_chunked_upload_is_cut_off_after_its_413(server: ServerProcess, watch: Watch) -> None:
    head = (
        b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % _token().encode()
    )
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    for _ in range(ATTACK_ROUNDS):
        with connect(server, timeout=3) as sock:
            sent = stream(sock, head + b"1\r\n{\r\n", chunk, 512 * 1024 * 1024, seconds=8)
            response, closed = read_all(sock, timeout=5)
        assert closed
        # The limit, then the bounded lingering and the kernel's buffers: not the 512 MB offered.
        assert sent < MAX_BODY_BYTES + HEAD_READ_BOUND, f"the server read {sent / 2**20:.0f} MB after its 413"
        if response:
            assert response.startswith(b"HTTP/1.1 413")


def test_an_oversized_declared_body_gets_its_413_then_the_connection_closes(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (_token().encode(), 50 * MAX_BODY_BYTES) + b"x" * 65536
        )
        response, closed = read_all(sock)
    assert closed
    assert response.startswith(b"HTTP/1.1 413")


def test_an_early_answer_to_a_small_body_keeps_the_connection(server: ServerProcess) -> None:
    """A 401 sent before a small declared body arrived: the rest is read, the connection stays usable."""
    with connect(server) as sock:
        sock.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n")
        reader = sock.makefile("rb")
        assert read_response(reader)[0] == 401
        sock.sendall(b'{"title": "late..."}')
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(reader)[0] == 200


def test_a_client_that_disconnects_mid_body_is_logged_once_at_info_without_traceback(
    server: ServerProcess, watch: Watch
) -> None:
    marker = f"/api/tasks?disconnect-test={time.monotonic_ns()}"
    count = 20
    before = server.output()
    for _ in range(count):
        with connect(server) as sock:
            sock.sendall(
                b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" % (marker.encode(), _token().encode()) + b'{"title": "' + b"x" * 400
            )
            time.sleep(0.02)  # the app is waiting for the rest of the body
    wait_until(
        lambda: (
            server.output().count("client disconnected before its request was complete")
            - before.count("client disconnected before its request was complete")
            >= count
        ),
        timeout=5,
        what="disconnects logged",
    )
    time.sleep(0.2)
    new = server.output()[len(before) :]
    lines = [line for line in new.splitlines() if "disconnected" in line]
    assert len(lines) == count, lines
    assert all("INFO" in line for line in lines), lines
    for word in ("Traceback", "ERROR", "answered 5", "Exception in ASGI"):
        assert word not in new, new[:2000]
