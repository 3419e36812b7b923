"""The embedded PostgreSQL that `just dev` and the test suite run on: real server, no mocks."""

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError, postgres_bin_dir


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def pg(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    """A server of the test's own, for the tests that stop, restart or crash it."""
    with EmbeddedPostgres(data_dir) as server:
        yield server


@pytest.fixture(scope="module")
def shared_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One server for the tests that leave it running."""
    with EmbeddedPostgres(tmp_path_factory.mktemp("shared") / "data") as server:
        yield server


def count_rows(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM kept").fetchone()
    assert row is not None
    return int(row[0])


def make_table_with_one_row(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
        conn.execute("INSERT INTO kept VALUES (1)")


def test_binaries_are_found() -> None:
    for program in ("initdb", "pg_ctl", "postgres"):
        assert (postgres_bin_dir() / program).is_file()


def test_serves_sql_over_loopback_tcp_as_postgres(shared_pg: EmbeddedPostgres) -> None:
    assert shared_pg.url == f"postgresql://postgres@127.0.0.1:{shared_pg.port}/postgres"
    with psycopg.connect(shared_pg.url) as conn:
        row = conn.execute(
            "SELECT 1, current_user, host(inet_server_addr()), current_setting('server_encoding'),"
            " current_setting('TimeZone')"
        ).fetchone()
    assert row == (1, "postgres", "127.0.0.1", "UTF8", "UTC")
    assert shared_pg.is_running()


def test_start_when_running_is_a_no_op_and_stop_is_idempotent(pg: EmbeddedPostgres) -> None:
    pid_file = (pg.data_dir / "postmaster.pid").read_text()
    pg.start()
    assert (pg.data_dir / "postmaster.pid").read_text() == pid_file
    pg.stop()
    pg.stop()
    assert not pg.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.url, connect_timeout=2)


def test_restart_keeps_port_and_data(pg: EmbeddedPostgres) -> None:
    make_table_with_one_row(pg.url)
    port = pg.port
    pg.restart()
    assert pg.port == port
    assert count_rows(pg.url) == 1


def test_kill_takes_the_server_down_and_start_recovers_the_data(pg: EmbeddedPostgres) -> None:
    make_table_with_one_row(pg.url)
    survivor = psycopg.connect(pg.url, autocommit=True)

    pg.kill()

    assert not pg.is_running()
    assert (pg.data_dir / "postmaster.pid").exists()  # a crash leaves its pid file behind
    with pytest.raises(psycopg.OperationalError):
        survivor.execute("SELECT 1")
    assert survivor.closed
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.url, connect_timeout=2)
    pg.kill()  # nothing left to kill: fine

    pg.start()
    assert count_rows(pg.url) == 1
    assert "not properly shut down" in (pg.data_dir / "server.log").read_text()


def test_a_new_instance_reuses_the_data_dir(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as first:
        make_table_with_one_row(first.url)
    assert not first.is_running()
    with EmbeddedPostgres(data_dir) as second:
        assert count_rows(second.url) == 1


def test_a_new_instance_adopts_the_running_server_and_its_port(shared_pg: EmbeddedPostgres) -> None:
    other = EmbeddedPostgres(shared_pg.data_dir)
    assert other.port == shared_pg.port
    other.start()
    assert other.is_running()


def test_create_database_is_idempotent_and_copies_a_template(shared_pg: EmbeddedPostgres) -> None:
    template_url = shared_pg.create_database("template-db")
    make_table_with_one_row(template_url)
    assert shared_pg.create_database("template-db") == template_url
    copy_url = shared_pg.create_database("copy", template="template-db")
    assert copy_url == f"postgresql://postgres@127.0.0.1:{shared_pg.port}/copy"
    assert count_rows(copy_url) == 1


def test_a_failed_start_raises_with_the_server_log(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedPostgres(data_dir, port=taken.getsockname()[1])
        with pytest.raises(EmbeddedPostgresError, match="could not bind"):
            server.start()
    assert not server.is_running()
