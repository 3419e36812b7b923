"""Search, list and write costs on a user with 50,000 tasks, straight through the SQL files.

    python bench/limits.py [BEFORE]   # BEFORE: another checkout (e.g. a worktree of main) to compare with

For this tree (and BEFORE), in a database each on `BENCH_DATABASE_URL` (else a private embedded
PostgreSQL): applies the tree's migrations, seeds one user with 50,000 tasks (a tenth with a
description), 10,000 users with 20 tasks and a user with 2,000 crafted 9,000-character tasks, then
times the tree's `sql/tasks/list.sql` for pages and searches (p50/p99, temporary bytes written per
run, the plan) and its create/toggle statements. The trees' runs are interleaved in slices, so a
burst of load on a shared machine hits both. Writes `reports/limits_<time>.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import string
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from app.db import statement
from app.embedded_pg import EmbeddedPostgres
from app.tasks.paging import NO_CURSOR

WORDS = [
    "buy",
    "milk",
    "call",
    "mom",
    "write",
    "report",
    "fix",
    "bug",
    "review",
    "pull",
    "request",
    "plan",
    "trip",
    "pay",
    "rent",
    "book",
    "flight",
    "clean",
    "garage",
    "water",
    "plants",
    "email",
    "team",
    "update",
    "docs",
    "renew",
    "passport",
    "order",
    "pizza",
    "walk",
    "dog",
]
BIG_TASKS = 50_000


def _db_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _seed(conn: psycopg.Connection[Any]) -> None:
    rng = random.Random(7)  # noqa: S311
    conn.execute("INSERT INTO users (id) SELECT 'big' UNION ALL SELECT 'u' || g FROM generate_series(0, 9999) AS g")
    rows = []
    for i in range(BIG_TASKS):
        title = " ".join(rng.choices(WORDS, k=4)) + f" #{i}"
        description = " ".join(rng.choices(WORDS, k=30)) if i % 10 == 0 else None
        rows.append(("big", title, description, i % 3 == 0))
    with conn.cursor() as cur, cur.copy("COPY tasks (user_id, title, description, completed) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
        for u in range(10_000):
            for j in range(20):
                copy.write_row((f"u{u}", f"{rng.choice(WORDS)} {j}", None, False))
    # A user who crafted 2,000 tasks of 9,000 characters against substring matchers (issue 9).
    conn.execute(
        "INSERT INTO users (id) VALUES ('crafty');"
        "INSERT INTO tasks (user_id, title, description) SELECT 'crafty', 'crafted ' || g, "
        "repeat('a', 9000) || ' aac ca ' || g FROM generate_series(1, 2000) AS g"
    )
    if _has_column(conn, "users", "task_count"):
        conn.execute("UPDATE users SET task_count = (SELECT count(*) FROM tasks WHERE user_id = users.id)")


def _has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s", (table, column)
    ).fetchone()
    return row is not None


def _temp_bytes(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def _flush_stats(conn: psycopg.Connection[Any]) -> None:
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")


def _plan(conn: psycopg.Connection[Any], query: bytes, params: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, params).fetchone()
    assert row is not None
    top = row[0][0]
    return {"plan_ms": round(top["Execution Time"], 2), "plan": _plan_outline(top["Plan"])}


def _plan_outline(node: dict[str, Any], depth: int = 0) -> str:
    name = node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else "")
    lines = ["  " * depth + name]
    for child in node.get("Plans", []):
        lines.append(_plan_outline(child, depth + 1))
    return "\n".join(lines)


class Tree:
    """One checkout's migrations and SQL files, in a database of its own on the bench server."""

    def __init__(self, label: str, root: Path, server: str) -> None:
        self.label = label
        self.root = root
        self.name = f"bench_limits_{label}_{uuid.uuid4().hex[:8]}"
        self.server = server
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.url = _db_url(server, self.name)
        backend = get_backend("postgresql+psycopg://" + self.url.partition("://")[2])
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(root / "migrations"))))
        # As the service sends them (this tree's loader, for BEFORE's files too: without comments).
        self.queries = {
            p.relative_to(root / "sql").with_suffix("").as_posix(): statement(p.read_bytes())
            for p in (root / "sql").rglob("*.sql")
        }
        # A tree's search statement: tasks/search.sql where it has one (before searches moved into
        # list.sql), else tasks/list.sql. Its pattern: a ~* regex (***=q), or an older tree's ILIKE.
        self.search = "tasks/search" if "tasks/search" in self.queries else "tasks/list"
        self.regex = b"~*" in self.queries[self.search]
        self.conn = psycopg.connect(self.url, autocommit=True)
        _seed(self.conn)
        self.conn.execute("VACUUM ANALYZE")
        self.conn.execute("SET statement_timeout = 5000")

    def pattern(self, q: str) -> str:
        return f"***={q}" if self.regex else f"%{q}%"

    def drop(self) -> None:
        self.conn.close()
        with psycopg.connect(self.server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


def _case(trees: list[Tree], change: dict[str, Any], q: str | None, runs: int) -> dict[str, Any]:
    """`runs` executions per tree, interleaved in 4 slices so that a burst of load hits all trees."""
    base = {
        "user_id": "big",
        "completed": None,
        "sort": "-created_at",
        "limit": 20,
        "offset": 0,
        **NO_CURSOR,
        # organizing filters, off (names a tree's statement lacks are ignored)
        "priorities": None,
        "tags": None,
        "due_before": None,
        "due_after": None,
        "overdue": None,
    }
    params = {t.label: {**base, **change, "pattern": None if q is None else t.pattern(q)} for t in trees}
    times: dict[str, list[float]] = {t.label: [] for t in trees}
    temp: dict[str, int] = {}
    failed: set[str] = set()
    names = {t.label: t.search if q is not None else "tasks/list" for t in trees}
    query = {t.label: t.queries[names[t.label]] for t in trees}
    # As the service runs them (since keyset paging): tasks/list.sql unprepared, a plan for the
    # values; an older tree's tasks/search.sql prepared (psycopg's default).
    prepare = {t.label: False if names[t.label] == "tasks/list" else None for t in trees}
    for t in trees:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            t.conn.execute(query[t.label], params[t.label], prepare=prepare[t.label]).fetchall()
        _flush_stats(t.conn)
        temp[t.label] = -_temp_bytes(t.conn)
    for _ in range(4):
        for t in trees:
            for _ in range(runs // 4):
                if t.label in failed:
                    break
                start = time.perf_counter()
                try:
                    t.conn.execute(query[t.label], params[t.label], prepare=prepare[t.label]).fetchall()
                except psycopg.errors.QueryCanceled:
                    failed.add(t.label)
                    break
                times[t.label].append((time.perf_counter() - start) * 1000)
    time.sleep(0.6)  # servers before 15 report statistics every 500 ms
    out: dict[str, Any] = {}
    for t in trees:
        _flush_stats(t.conn)
        if t.label in failed:
            out[t.label] = {"result": "statement timeout (5 s)"}
            continue
        out[t.label] = {
            "runs": len(times[t.label]),
            "p50_ms": round(statistics.median(times[t.label]), 2),
            "p99_ms": round(_percentile(times[t.label], 99), 2),
            "temp_bytes_per_run": (temp[t.label] + _temp_bytes(t.conn)) // max(1, len(times[t.label])),
            **_plan(t.conn, query[t.label], params[t.label]),
        }
    return out


def _writes(trees: list[Tree]) -> dict[str, Any]:
    """Mean time of a create and a toggle by a 20-task user (what a write pays for the indexes),
    interleaved in 4 slices of 500."""
    params = {
        "user_id": "u1",
        "email": None,
        "name": None,
        "completed": False,
        # organizing fields (names a tree's statement lacks are ignored)
        "priority": "none",
        "tags": [],
        "tag_keys": [],
        "due_at": None,
        "recurrence": None,
        "max_tasks": 1_000_000,
        "title": "write cost probe task with a few words",
        "description": " ".join(WORDS),
    }
    creates: dict[str, list[float]] = {t.label: [] for t in trees}
    toggles: dict[str, list[float]] = {t.label: [] for t in trees}
    for _ in range(4):
        for t in trees:
            ids = []
            for _ in range(500):
                start = time.perf_counter()
                row = t.conn.execute(t.queries["tasks/create"], params).fetchone()
                creates[t.label].append((time.perf_counter() - start) * 1000)
                assert row is not None
                ids.append(row[0])
            for task_id in ids:
                start = time.perf_counter()
                t.conn.execute(
                    t.queries["tasks/toggle_completed"], {"user_id": "u1", "id": task_id, "if_match": None}
                ).fetchone()
                toggles[t.label].append((time.perf_counter() - start) * 1000)
    out = {}
    for t in trees:
        row = t.conn.execute("SELECT pg_relation_size('tasks'), pg_indexes_size('tasks')").fetchone()
        assert row is not None
        out[t.label] = {
            "create_mean_ms": round(statistics.mean(creates[t.label]), 3),
            "toggle_mean_ms": round(statistics.mean(toggles[t.label]), 3),
            "table_bytes": row[0],
            "indexes_bytes": row[1],
        }
    return out


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    roots = [("after", here)] if len(sys.argv) < 2 else [("before", Path(sys.argv[1])), ("after", here)]
    with contextlib.ExitStack() as stack:
        server = os.environ.get("BENCH_DATABASE_URL")
        if not server:
            data = stack.enter_context(tempfile.TemporaryDirectory())
            server = stack.enter_context(EmbeddedPostgres(Path(data) / "pg")).url
        trees = [Tree(label, root, server) for label, root in roots]
        try:
            results: dict[str, Any] = {"roots": {label: str(root) for label, root in roots}}
            results["index_bytes"] = {
                t.label: dict(
                    t.conn.execute(
                        "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                        "WHERE relname = 'tasks' ORDER BY 1"
                    ).fetchall()
                )
                for t in trees
            }
            long_q = "".join(random.Random(1).choices(string.ascii_lowercase + " ", k=200))  # noqa: S311
            cases: list[tuple[str, dict[str, Any], str | None, int]] = [
                ("list limit=20", {}, None, 200),
                ("list limit=1", {"limit": 1}, None, 200),
                ("list completed=false limit=20", {"completed": False}, None, 200),
                ("search q=milk limit=20", {}, "milk", 200),
                ("search q=garage water limit=20", {}, "garage water", 200),
                ("search q=zzzz (no match)", {}, "zzzz", 200),
                ("search q=a limit=20", {}, "a", 100),
                ("search q=200 random characters", {}, long_q, 100),
                ("crafted 2,000 x 9,000 chars, q='a'*199+'c'", {"user_id": "crafty"}, "a" * 199 + "c", 8),
                ("crafted 2,000 x 9,000 chars, q='c'+'a'*199", {"user_id": "crafty"}, "c" + "a" * 199, 8),
            ]
            results["list"] = {}
            for label, change, q, runs in cases:
                results["list"][label] = _case(trees, change, q, runs)
                summary = {
                    k: {x: v.get(x) for x in ("p50_ms", "p99_ms", "temp_bytes_per_run", "result")}
                    for k, v in results["list"][label].items()
                }
                print(label, json.dumps(summary), flush=True)
            results["writes"] = _writes(trees)
            print("writes", json.dumps(results["writes"]), flush=True)
        finally:
            for t in trees:
                t.drop()
    out = Path("reports") / f"limits_{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
