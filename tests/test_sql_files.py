"""The SQL files as the service sends them: comments stay in the files, not on the wire, and every
statement fits psycopg's cache of converted queries (else it is parsed again on every execute)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import _queries

from app.db import SQL_DIR, SqlFiles, statement

PLACEHOLDER = re.compile(rb"%\((\w+)\)s")


def test_whole_line_comments_and_blank_lines_are_left_out() -> None:
    text = b"-- what it does\n\nSELECT 1 -- the answer\n    -- indented note\nFROM t\n"
    assert statement(text) == b"SELECT 1 -- the answer\nFROM t"


def test_every_statement_fits_psycopgs_cache_and_keeps_its_code() -> None:
    sql = SqlFiles()
    for path in sorted(SQL_DIR.rglob("*.sql")):
        name = path.relative_to(SQL_DIR).with_suffix("").as_posix()
        sent = sql[name]
        assert len(sent) <= _queries.MAX_CACHED_STATEMENT_LENGTH, f"sql/{name}.sql: {len(sent)} bytes as sent"
        code = [line for line in path.read_bytes().splitlines() if not line.lstrip().startswith(b"--")]
        assert set(PLACEHOLDER.findall(sent)) == set(PLACEHOLDER.findall(b"\n".join(code))), name
        assert not any(line.lstrip().startswith(b"--") for line in sent.splitlines()), name


def test_the_longest_statement_is_converted_once_then_served_from_the_cache(db: psycopg.Connection[Any]) -> None:
    """Measured before: with its comments, tasks/update.sql (4,592 bytes) missed the cache, and its
    conversion took a third of the worker's CPU on PUT."""
    sql = SqlFiles()
    update = sql["tasks/update"]
    params = {
        "user_id": "nobody",
        "id": 1,
        "title": "t",
        "set_description": False,
        "description": None,
        "completed": None,
        "set_priority": False,
        "priority": None,
        "set_tags": False,
        "tags": None,
        "tag_keys": None,
        "set_due_at": False,
        "due_at": None,
        "set_recurrence": False,
        "recurrence": None,
        "if_match": None,
    }
    db.execute(update, params)
    hits = _queries._query2pg.cache_info().hits
    db.execute(update, params)
    assert _queries._query2pg.cache_info().hits == hits + 1
