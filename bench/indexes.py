"""`just indexes`: decide each index of `tasks` by measurement, and say what each costs a write.

What it does (about a minute; re-run it whenever a migration adds or drops an index):
1. A database `tasks_bench_indexes` on the benchmark's server (see bench/run.py), migrated to the
   latest migration, holding 150,000 tasks: a user with 50,000, a user with 1,000 and 2,000 other
   users, their rows interleaved over the table as years of use would leave them.
2. Reads: for every filter and sort the list offers (completed/status, q, each sort in both
   directions, a deep offset), a page of 20 for the 1,000-task and the 50,000-task user, timed as
   the service runs it (the SQL files of `PAGE_STATEMENTS`, parameters bound): the median of 5
   runs on the migrated schema, and again with each candidate index toggled: an index the schema
   has is dropped, one it lacks (`CANDIDATES`) is built, inside a transaction that is rolled back.
   The plans (EXPLAIN (ANALYZE, BUFFERS)) go to reports/indexes-<time>.txt.
3. Writes: for each index the same way, what a create, a toggle, an edit of the title and an edit
   of the description cost with and without it: server time and WAL bytes per statement (a
   pipeline of `WRITES` statements in one transaction, rolled back) and the share of HOT updates.

Knobs: BENCH_INDEX_WRITES (2000), BENCH_INDEX_RUNS (5), BENCH_INDEX_READS=0 (writes only); the server as
for `just bench`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import SqlFiles  # noqa: E402
from app.tasks.paging import NO_CURSOR  # noqa: E402
from app.tasks.repository import contains_pattern  # noqa: E402
from bench.run import env_int, log, postgres_server, prepared, recreate_database  # noqa: E402

INDEX_DB = "tasks_bench_indexes"
BIG_USER, SMALL_USER = "idx-big", "idx-small"
USER_TASKS = {SMALL_USER: 1_000, BIG_USER: 50_000}
PAGE = 20
RUNS = env_int("BENCH_INDEX_RUNS", 5)
WRITES = env_int("BENCH_INDEX_WRITES", 2000)

# What a list request runs (app/tasks/repository.py: TaskRepository.list), in order.
PAGE_STATEMENTS = ("tasks/list",)

# Indexes the schema does not have but a query might want; the schema's own are found in the catalog.
CANDIDATES = {
    "tasks_user_completed_created_idx": "CREATE INDEX tasks_user_completed_created_idx "
    "ON tasks (user_id, completed, created_at DESC, id DESC)",
    "tasks_user_updated_idx": "CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at DESC, id DESC)",
    "tasks_user_title_idx": "CREATE INDEX tasks_user_title_idx ON tasks (user_id, title, id)",
    # q: pg_trgm serves a substring search (ILIKE or ~*), btree_gin puts user_id in the same index.
    "tasks_user_search_idx": "CREATE INDEX tasks_user_search_idx ON tasks "
    "USING gin (user_id, title gin_trgm_ops, description gin_trgm_ops)",
    # Organizing (migration 0007): the schema's own are toggled off; these are the alternatives.
    "tasks_user_priority_idx": "CREATE INDEX tasks_user_priority_idx ON tasks (user_id, priority, id)",
    "tasks_user_tags_idx": (
        "CREATE INDEX tasks_user_tags_idx ON tasks USING gin (user_id, tag_keys) WHERE tag_keys <> '{}'"
    ),
    "tasks_user_due_idx": "CREATE INDEX tasks_user_due_idx ON tasks (user_id, due_at, id)",
    # -due_at puts the tasks without a due date last: this order serves it directly.
    "tasks_user_due_desc_idx": "CREATE INDEX tasks_user_due_desc_idx "
    "ON tasks (user_id, due_at DESC NULLS LAST, id DESC)",
    # overdue=true as a partial index on the pending tasks: but `completed` changes on every toggle.
    "tasks_user_pending_due_idx": "CREATE INDEX tasks_user_pending_due_idx "
    "ON tasks (user_id, due_at) WHERE NOT completed",
}
EXTENSIONS = ("pg_trgm", "btree_gin")  # for the candidates above; in PostgreSQL's contrib

# label -> list parameters besides user_id and limit (the repository's names; NULL = not given).
QUERIES: dict[str, dict[str, Any]] = {
    "default (-created_at)": {},
    "sort=created_at": {"sort": "created_at"},
    "sort=-updated_at": {"sort": "-updated_at"},
    "sort=updated_at": {"sort": "updated_at"},
    "sort=title": {"sort": "title"},
    "sort=-title": {"sort": "-title"},
    "completed=true": {"completed": True},
    "completed=false (status=pending)": {"completed": False},
    "q=<rare> (~1 in 10,000)": {"q": "c0ffe"},
    "q=task (every row)": {"q": "task"},
    "offset=half": {"offset": "half"},
    "tag=<common> (1 in 4)": {"tags": ["work"]},
    "tag=<rare> (1 in 1,000)": {"tags": ["tax"]},
    "tag=work&tag=home (1 in 16)": {"tags": ["work", "home"]},
    "priority=high (1 in 4)": {"priorities": ["high"]},
    "priority=low,medium": {"priorities": ["low", "medium"]},
    "overdue=true": {"overdue": True},
    "due_before=<in a week>": {"due_before": "week"},
    "sort=due_at": {"sort": "due_at"},
    "sort=-due_at": {"sort": "-due_at"},
    "sort=priority": {"sort": "priority"},
    "sort=-priority": {"sort": "-priority"},
    "tag=<common>&sort=due_at": {"tags": ["work"], "sort": "due_at"},
}

# Each write kind: the SQL file and its parameters for the i-th task id of the big user.
WRITE_KINDS = ("create", "toggle", "edit title", "edit description", "edit priority", "edit tags", "edit due_at")


def log_line(lines: list[str], text: str = "") -> None:
    lines.append(text)
    print(text, flush=True)


# --- dataset ------------------------------------------------------------------------------------


def build(server_url: str) -> str:
    log(f"building {INDEX_DB}: 150,000 tasks (a 50,000-task user, a 1,000-task user, 2,000 others)")
    url = recreate_database(server_url, INDEX_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        for extension in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
        conn.execute(
            """
            INSERT INTO users (id, name)
            SELECT 'idx-' || u, 'Other' FROM generate_series(0, 1999) u
            UNION ALL VALUES (%(big)s, 'Big'), (%(small)s, 'Small')
            """,
            {"big": BIG_USER, "small": SMALL_USER},
        )
        # Every third row is the big user's, one in 150 the small user's; titles start with a hash so
        # title order is not insertion order; updated_at is decorrelated from created_at.
        conn.execute(
            """
            INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at)
            SELECT CASE WHEN g %% 3 = 0 THEN %(big)s WHEN g %% 100 = 1 THEN %(small)s ELSE 'idx-' || g %% 2000 END,
                   format('%%s task %%s', left(md5(g::text), 8), g),
                   CASE WHEN g %% 2 = 0 THEN format('Some details about task %%s', g) END,
                   (g * 7) %% 10 < 3,
                   now() - (150000 - g) * interval '1 minute',
                   now() - (150000 - g) * interval '1 minute' + (g * 7919 %% 86400) * interval '1 second'
            FROM generate_series(1, 150000) g
            """,
            {"big": BIG_USER, "small": SMALL_USER},
        )
        # Organizing fields: priorities evenly, the tag "work" on 1 in 4 and "home" on 1 in 4
        # (independently), "tax" on 1 in 1,000; three tasks in four have a due date, spread over
        # two years around now (so about half of those are past).
        conn.execute(
            """
            UPDATE tasks SET
                priority = (ARRAY['none', 'low', 'medium', 'high'])[(id * 7 % 4) + 1]::task_priority,
                tags = array_remove(ARRAY[CASE WHEN id % 4 = 1 THEN 'work' END,
                                          CASE WHEN (id / 4) % 4 = 2 THEN 'home' END,
                                          CASE WHEN id % 1000 = 7 THEN 'tax' END], NULL),
                tag_keys = array_remove(ARRAY[CASE WHEN id % 4 = 1 THEN 'work' END,
                                              CASE WHEN (id / 4) % 4 = 2 THEN 'home' END,
                                              CASE WHEN id % 1000 = 7 THEN 'tax' END], NULL),
                due_at = CASE WHEN id % 4 <> 3 THEN now() + ((id * 7919 % 730) - 365) * interval '1 day' END
            """
        )
        conn.execute("VACUUM FULL tasks")  # the updates above left every row twice; as a fresh load
        conn.execute("VACUUM ANALYZE tasks")
        counts: dict[str, int] = dict(conn.execute("SELECT user_id, count(*) FROM tasks GROUP BY user_id").fetchall())
    assert counts[BIG_USER] == USER_TASKS[BIG_USER] and counts[SMALL_USER] == USER_TASKS[SMALL_USER], counts
    return url


def schema_indexes(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The secondary indexes of `tasks` as migrated (name -> definition); the primary key is not a candidate."""
    rows = conn.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = 'tasks'::regclass AND NOT x.indisprimary ORDER BY i.relname
        """
    ).fetchall()
    return {name: definition for name, definition in rows}


def index_sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes WHERE relname = 'tasks'"
    ).fetchall()
    return {name: size for name, size in rows}


@dataclass
class Variant:
    """The schema as migrated, or changed by `statements` (run in a transaction that is rolled back)."""

    label: str
    statements: tuple[str, ...] = ()
    builds: str = ""  # the index it builds, whose size is reported


SCHEMA = Variant("schema")


def without(name: str) -> Variant:
    return Variant(f"without {name}", (f'DROP INDEX "{name}"',))


# Settings of an index of the schema worth measuring, where the schema has that index. A GIN index
# with `fastupdate` (the default) queues new entries in a pending list that whichever write finds it
# full (gin_pending_list_limit, 4 MB) merges into the index: cheap writes, and a slow one now and then.
TWEAKS: dict[str, dict[str, tuple[str, ...]]] = {
    "tasks_user_search_idx": {
        "search_idx fastupdate=off": ("ALTER INDEX tasks_user_search_idx SET (fastupdate = off)",),
        "search_idx pending list 256 kB": ("ALTER INDEX tasks_user_search_idx SET (gin_pending_list_limit = 256)",),
    }
}


def variants(conn: psycopg.Connection[Any]) -> list[Variant]:
    own = schema_indexes(conn)
    out = [SCHEMA, *(without(name) for name in own)]
    out += [
        Variant(f"with {name}", (definition, "ANALYZE tasks"), builds=name)
        for name, definition in CANDIDATES.items()
        if name not in own
    ]
    out += [Variant(label, statements) for name in own for label, statements in TWEAKS.get(name, {}).items()]
    return out


@contextmanager
def applied(conn: psycopg.Connection[Any], variant: Variant) -> Iterator[None]:
    """`variant` inside a transaction that is rolled back: the database is left as it was."""
    with conn.transaction(force_rollback=True):
        for statement in variant.statements:
            conn.execute(statement)
        yield


# --- reads --------------------------------------------------------------------------------------

PREPARED = "schema, prepared as the service does"


def page_params(user: str, given: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "user_id": user,
        "completed": None,
        "sort": "-created_at",
        "limit": PAGE,
        "offset": 0,
        **NO_CURSOR,
        "priorities": None,
        "tags": None,
        "due_before": None,
        "due_after": None,
        "overdue": None,
    }
    params.update(given)
    params["pattern"] = contains_pattern(params.pop("q", None))
    if params["offset"] == "half":
        params["offset"] = USER_TASKS[user] // 2
    if params["due_before"] == "week":
        params["due_before"] = datetime.now(UTC) + timedelta(days=7)
    return params


def median_ms(run: Callable[[], object]) -> float:
    samples = []
    for attempt in range(RUNS + 1):
        started = time.perf_counter()
        run()
        if attempt:  # the first run warms the cache
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def time_page(conn: psycopg.Connection[Any], statements: list[bytes], params: dict[str, Any]) -> float:
    """Median milliseconds of the page's statements with a plan made for these values (a custom plan:
    psycopg's unnamed statement), the best an index can do."""

    def run() -> None:
        for statement in statements:
            conn.execute(statement, params, binary=True, prepare=False).fetchall()

    return median_ms(run)


class PreparedPage:
    """The list statement as the service runs it: prepared once per connection (psycopg's
    prepare_threshold) and executed for many users, so PostgreSQL's plan cache settles, after five
    custom plans, on a generic plan whenever its estimate is no worse. A generic plan cannot fold
    the statement's `(%(x)s IS NULL OR ...)` and `CASE` sort keys, so it uses no index for a filter
    or a sort: it reads the user's rows and sorts them."""

    def __init__(self, conn: psycopg.Connection[Any], statement: bytes, name: str) -> None:
        self.conn, self.name = conn, name
        self.source = statement.decode()
        text, _ = prepared(self.source, page_params(SMALL_USER, {}))
        conn.execute(f"PREPARE {name} AS {text}")
        for other in range(10):  # ordinary users first, as a server's connection sees them
            self.execute(page_params(f"idx-{other}", {}))

    def _args(self, params: dict[str, Any]) -> str:
        _, values = prepared(self.source, params)
        return psycopg.sql.SQL(", ").join(psycopg.sql.Literal(v) for v in values).as_string(self.conn)

    def execute(self, params: dict[str, Any]) -> None:
        self.conn.execute(f"EXECUTE {self.name}({self._args(params)})").fetchall()

    def plan_kind(self, params: dict[str, Any]) -> str:
        rows = self.conn.execute(f"EXPLAIN (COSTS OFF) EXECUTE {self.name}({self._args(params)})").fetchall()
        return "generic" if any("$" in r[0] for r in rows) else "custom"

    def close(self) -> None:
        self.conn.execute(f"DEALLOCATE {self.name}")


def plan(conn: psycopg.Connection[Any], statement: bytes, params: dict[str, Any]) -> list[str]:
    rows = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, params).fetchall()
    return [r[0] for r in rows]


def access_path(lines: list[str]) -> str:
    """The plan in a few words: the scans it uses and whether it sorts."""
    words = []
    for line in lines:
        text = line.strip().removeprefix("-> ").strip()
        if text.startswith(("Index Scan", "Index Only Scan", "Bitmap Index Scan", "Seq Scan")):
            words.append(text.split("  (")[0].replace("Backward", "backward").replace(" on tasks", ""))
        elif text.startswith("Sort Method"):
            words.append(text.split(":")[1].strip().split()[0] + " sort")
    return "; ".join(dict.fromkeys(words))


def measure_reads(
    conn: psycopg.Connection[Any], sql: SqlFiles, all_variants: list[Variant], plans: list[str]
) -> dict[tuple[str, str], dict[str, tuple[float, str]]]:
    """(query, user) -> variant label -> (ms, access path); and under PREPARED, the schema's list
    statement as the service runs it (ms, "generic"/"custom")."""
    statements = [sql[name] for name in PAGE_STATEMENTS]
    out: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}
    for variant in all_variants:
        log(f"reads: {variant.label}")
        with applied(conn, variant):
            for user in USER_TASKS:
                for label, given in QUERIES.items():
                    params = page_params(user, given)
                    ms = time_page(conn, statements, params)
                    lines = [line for statement in statements for line in plan(conn, statement, params)]
                    plans.append(f"-- {label}, {user} ({USER_TASKS[user]:,} tasks), {variant.label}: {ms:.2f} ms")
                    plans.extend(lines)
                    out.setdefault((label, user), {})[variant.label] = (ms, access_path(lines))
    page = PreparedPage(conn, statements[0], "bench_page")
    try:
        for user in USER_TASKS:
            for label, given in QUERIES.items():
                params = page_params(user, given)
                ms = median_ms(lambda params=params: page.execute(params))  # type: ignore[misc]
                out[(label, user)][PREPARED] = (ms, page.plan_kind(params))
    finally:
        page.close()
    return out


# --- writes -------------------------------------------------------------------------------------


@dataclass
class WriteCost:
    us: float  # server time per statement, round trips excluded (pipeline)
    wal_bytes: float
    hot_share: float | None  # None for inserts
    max_ms: float = 0.0  # the slowest single statement, round trip included (a third pass, one by one)


def write_params(kind: str, user: str, task: tuple[int, str], i: int) -> tuple[str, dict[str, Any]]:
    task_id, title = task
    base: dict[str, Any] = {"user_id": user, "id": task_id, "if_match": None}
    if kind == "create":
        # max_tasks: the per-user quota where create.sql has one (names a statement lacks are ignored).
        params = {"user_id": user, "email": None, "name": None, "title": f"new {i}", "description": None}
        organizing = {"priority": "none", "tags": [], "tag_keys": [], "due_at": None, "recurrence": None}
        return "tasks/create", {**params, **organizing, "completed": False, "max_tasks": 2**31 - 1}
    if kind == "toggle":
        return "tasks/toggle_completed", base
    kept = {f"set_{name}": False for name in ("priority", "tags", "due_at", "recurrence")}
    kept |= {"priority": None, "tags": None, "tag_keys": None, "due_at": None, "recurrence": None, "description": None}
    edit = {**base, **kept, "set_description": kind == "edit description", "completed": None}
    if kind == "edit title":
        return "tasks/update", {**edit, "title": f"renamed {i}", "description": None}
    if kind == "edit priority":
        # Each pass over the rows (i // WRITES) sets the other value: every edit changes the row.
        priority = ("low", "high")[(i // WRITES) % 2]
        return "tasks/update", {**edit, "title": title, "set_priority": True, "priority": priority}
    if kind == "edit tags":
        tags = [f"t{i}", "work"]
        return "tasks/update", {**edit, "title": title, "set_tags": True, "tags": tags, "tag_keys": tags}
    if kind == "edit due_at":
        due = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)
        return "tasks/update", {**edit, "title": title, "set_due_at": True, "due_at": due}
    return "tasks/update", {**edit, "title": title, "description": f"changed {i}"}


def sample_tasks(conn: psycopg.Connection[Any], user: str, count: int) -> list[tuple[int, str]]:
    """Up to `count` of the user's tasks (id, title), one per heap page: the writes are measured in one
    transaction, which cannot prune its own row versions, so two on a page would use up its room."""
    rows = conn.execute(
        """
        SELECT id, title FROM (
            SELECT DISTINCT ON ((ctid::text::point)[0]) id, title FROM tasks WHERE user_id = %s
            ORDER BY (ctid::text::point)[0], id
        ) one_per_page ORDER BY md5(id::text) LIMIT %s
        """,
        (user, count),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def measure_writes(
    conn: psycopg.Connection[Any], sql: SqlFiles, variant: Variant, user: str, tasks: list[tuple[int, str]]
) -> dict[str, WriteCost]:
    """Each write kind on distinct rows of `user`, in a rolled-back transaction per kind."""
    out = {}
    for kind in WRITE_KINDS:
        out[kind] = one_write_kind(conn, sql, variant, kind, user, tasks)
        conn.execute("VACUUM tasks")  # the rolled-back versions would otherwise fill the pages' room
    return out


def one_write_kind(
    conn: psycopg.Connection[Any],
    sql: SqlFiles,
    variant: Variant,
    kind: str,
    user: str,
    tasks: list[tuple[int, str]],
) -> WriteCost:
    counters = (
        "SELECT pg_current_wal_insert_lsn(), pg_stat_get_xact_tuples_updated('tasks'::regclass),"
        " pg_stat_get_xact_tuples_hot_updated('tasks'::regclass)"
    )
    with applied(conn, variant):
        # Two passes over the same rows, the second one measured: the first takes the full-page
        # images (first change of a page after a checkpoint) and the cache misses, which depend on
        # when the last checkpoint happened, not on the index.
        for measured in (False, True):
            lsn0, upd0, hot0 = conn.execute(counters).fetchone() or (None, 0, 0)
            started = time.perf_counter()
            with conn.pipeline():
                for i, task in enumerate(tasks):
                    name, params = write_params(kind, user, task, i + len(tasks) * measured)
                    conn.execute(sql[name], params, binary=True)
            elapsed = time.perf_counter() - started
            lsn1, upd1, hot1 = conn.execute(counters).fetchone() or (None, 0, 0)
        wal = conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (lsn1, lsn0)).fetchone()
        # One by one: an index whose maintenance comes in bursts (a GIN index's pending list is
        # merged by whichever write finds it full) shows in the slowest statement, not in the mean.
        slowest = 0.0
        for i, task in enumerate(tasks):
            name, params = write_params(kind, user, task, i + len(tasks) * 2)
            started = time.perf_counter()
            conn.execute(sql[name], params, binary=True)
            slowest = max(slowest, time.perf_counter() - started)
    updated = upd1 - upd0
    return WriteCost(
        us=elapsed / len(tasks) * 1e6,
        wal_bytes=float(wal[0] if wal else 0) / len(tasks),
        hot_share=(hot1 - hot0) / updated if updated else None,
        max_ms=slowest * 1000,
    )


# --- report -------------------------------------------------------------------------------------


def print_reads(
    lines: list[str], reads: dict[tuple[str, str], dict[str, tuple[float, str]]], labels: list[str]
) -> None:
    log_line(lines, f"Reads: a page of {PAGE}, ms (median of {RUNS}); the schema's access path in the last column")
    log_line(
        lines,
        "Each variant with a custom plan (made for the values: the best case for an index); the last column: "
        "the schema as the service runs it (prepared, after 10 other users)",
    )
    header = (
        f"{'query':<34} {'tasks':>6} "
        + " ".join(f"{label[:26]:>26}" for label in labels)
        + f" {'prepared (plan)':>18}  schema's access path"
    )
    log_line(lines, header)
    log_line(lines, "-" * len(header))
    for (query, user), by_variant in reads.items():
        cells = " ".join(f"{by_variant[label][0]:>26.2f}" for label in labels)
        ms, kind = by_variant[PREPARED]
        log_line(lines, f"{query:<34} {USER_TASKS[user]:>6} {cells} {ms:>8.2f} {kind:>9}  {by_variant['schema'][1]}")
    log_line(lines)
    log_line(lines, "Where a toggled index changes the plan (50,000-task user):")
    for (query, user), by_variant in reads.items():
        if user != BIG_USER:
            continue
        for label in labels[1:]:
            ms, path = by_variant[label]
            if path != by_variant["schema"][1]:
                log_line(lines, f"  {query:<34} {label}: {ms:.2f} ms: {path}")


def print_writes(
    lines: list[str], writes: dict[str, dict[str, WriteCost]], sizes: dict[str, int], all_variants: list[Variant]
) -> None:
    log_line(lines)
    log_line(
        lines,
        f"Writes: per statement ({WRITES} in a pipeline, distinct rows): server µs / WAL bytes / HOT share / "
        "slowest single statement ms",
    )
    header = f"{'variant':<46} {'index MB':>8} " + " ".join(f"{kind:>31}" for kind in WRITE_KINDS)
    log_line(lines, header)
    log_line(lines, "-" * len(header))
    for variant in all_variants:
        label = variant.label
        index = variant.builds or label.removeprefix("without ")
        size = f"{sizes[index] / 1e6:.1f}" if index in sizes else ""
        cells = []
        for kind in WRITE_KINDS:
            cost = writes[label][kind]
            hot = "" if cost.hot_share is None else f"{cost.hot_share:.0%}"
            cells.append(f"{cost.us:>8.1f} {cost.wal_bytes:>7.0f} {hot:>6} {cost.max_ms:>6.1f}")
        log_line(lines, f"{label:<46} {size:>8} " + " ".join(f"{c:>31}" for c in cells))


def main() -> int:
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    started = time.monotonic()
    sql = SqlFiles()
    lines: list[str] = []
    plans: list[str] = []
    with postgres_server() as (server_url, database):
        url = build(server_url)
        with psycopg.connect(url, autocommit=True) as conn:
            all_variants = variants(conn)
            labels = [v.label for v in all_variants]
            reads = measure_reads(conn, sql, all_variants, plans) if os.environ.get("BENCH_INDEX_READS") != "0" else {}
            tasks = sample_tasks(conn, BIG_USER, WRITES)
            writes: dict[str, dict[str, WriteCost]] = {}
            sizes: dict[str, int] = index_sizes(conn)
            for variant in all_variants:
                log(f"writes: {variant.label}")
                writes[variant.label] = measure_writes(conn, sql, variant, BIG_USER, tasks)
                if variant.builds:
                    with applied(conn, variant):
                        sizes.update(index_sizes(conn))
        loadavg = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]
        log_line(lines, f"{database}; {INDEX_DB}: 150,000 tasks; load average {' '.join(loadavg)}")
        if reads:
            print_reads(lines, reads, labels)
        print_writes(lines, writes, sizes, all_variants)
    out = reports / f"indexes-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    out.write_text("\n".join([*lines, "", "Plans:", *plans]) + "\n")
    log(f"done in {time.monotonic() - started:.0f} s; tables and plans in {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
