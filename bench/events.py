"""`python bench/events.py`: what live updates cost the write path (the notify trigger of 0006).

Three copies of the benchmark's database (bench/run.py's data), each served by `python -m app.serve`
(1 worker), the write scenarios run on all three interleaved (bench/run.py's `compare`):
- `none`: the triggers of migrations/0006_events.sql dropped (the service as it was before);
- `trigger`: as migrated, no stream open anywhere (the trigger's lookup finds nothing);
- `streams`: as migrated, with STREAM_ROWS open streams of other users (the lookup on a table that
  is not empty; the writing users have none, so there is still no NOTIFY).
The issue's budget: at most 5% of the write throughput. On a shared machine throughput moves with
the neighbours' load by more than that, so each slice also records the CPU time it cost: the
service process, and the PostgreSQL backends of its database (where the trigger runs; the server
must be local), per request. Knobs as for `just bench` (BENCH_SCENARIOS defaults to the write
scenarios here).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    DURATION_S,
    ROOT,
    SLICES,
    USERS,
    WARMUP_S,
    WRITE_SCENARIOS,
    Result,
    Server,
    cpu_seconds,
    loadavg,
    log,
    merge,
    postgres_server,
    recreate_database,
    running,
    seed_bench,
    token,
    user_task_ids,
    vacuum,
    write_lua_data,
    wrk,
)

VARIANTS = ("none", "trigger", "streams")
STREAM_ROWS = 1_000


def prepare(url: str, variant: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        if variant == "none":
            conn.execute("DROP TRIGGER tasks_notify_insert ON tasks")
            conn.execute("DROP TRIGGER tasks_notify_update ON tasks")
            conn.execute("DROP TRIGGER task_tombstones_notify ON task_tombstones")
        elif variant == "streams":
            conn.execute(
                "INSERT INTO event_streams (stream_id, user_id, worker, expires_at)"
                " SELECT gen_random_uuid(), 'listener-' || n, 'bench', now() + interval '1 day'"
                " FROM generate_series(1, %s) AS n",
                (STREAM_ROWS,),
            )
            conn.execute("ANALYZE event_streams")  # as autovacuum would have (migrations/0006_events.sql)


def backend_cpu(url: str) -> float:
    """CPU seconds used so far by the client backends connected to `url`'s database."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a backend that just ended
            total += cpu_seconds(pid)
    return total


def compare_cost(
    servers: list[Server], urls: list[str], scenario: str, data: Path
) -> list[tuple[Result, float, float]]:
    """bench/run.py's `compare` (interleaved slices, alternating order), plus per request the CPU µs
    of the service process and of its database backends."""
    if WARMUP_S:
        for server in servers:
            wrk(server.url, scenario, data, WARMUP_S)
    seconds = max(1, DURATION_S // SLICES)
    slices: list[list[Result]] = [[] for _ in servers]
    app_cpu = [0.0 for _ in servers]
    db_cpu = [0.0 for _ in servers]
    for round_ in range(SLICES):
        order = list(range(len(servers))) if round_ % 2 == 0 else list(reversed(range(len(servers))))
        for i in order:
            app_before, db_before = cpu_seconds(servers[i].proc.pid), backend_cpu(urls[i])
            slices[i].append(wrk(servers[i].url, scenario, data, seconds))
            app_cpu[i] += cpu_seconds(servers[i].proc.pid) - app_before
            db_cpu[i] += backend_cpu(urls[i]) - db_before
    merged = [merge(results) for results in slices]
    return [
        (result, app / result.requests * 1e6, db / result.requests * 1e6)
        for result, app, db in zip(merged, app_cpu, db_cpu, strict=True)
    ]


def main() -> int:
    wanted = os.environ.get("BENCH_SCENARIOS") or ",".join(WRITE_SCENARIOS)
    scenarios = [s.strip() for s in wanted.split(",") if s.strip()]
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    with postgres_server() as (server_url, database):
        urls = {}
        for variant in VARIANTS:
            urls[variant] = recreate_database(server_url, f"tasks_bench_events_{variant}")
            seed_bench(urls[variant])
            prepare(urls[variant], variant)
        users = [f"bench-{i:03d}" for i in range(1, USERS + 1)]
        ids = user_task_ids(urls["none"], [*users, "bench-big"])
        for variant in VARIANTS[1:]:
            if user_task_ids(urls[variant], [*users, "bench-big"]) != ids:
                raise RuntimeError("the databases were seeded with different task ids")
        writers = [f"writer-{i:03d}" for i in range(1, USERS + 1)]
        data = write_lua_data(reports / "bench-events-data.lua", {u: ids[u] for u in users}, writers)
        probe = token(users[0])
        log(f"{database}; variants {', '.join(VARIANTS)}")
        with (
            running("app.serve", urls["none"], probe) as none,
            running("app.serve", urls["trigger"], probe) as trigger,
            running("app.serve", urls["streams"], probe) as streams,
        ):
            for scenario in scenarios:
                for url in urls.values():
                    vacuum(url)
                load = loadavg()
                results = compare_cost([none, trigger, streams], list(urls.values()), scenario, data)
                base, base_cpu = results[0][0].rps, results[0][1] + results[0][2]
                line = ", ".join(
                    f"{variant} {r.rps:,.0f} rps ({r.rps / base - 1:+.1%}), p99 {r.p99_ms:.1f} ms, "
                    f"CPU/request {app:.0f} + db {db:.0f} µs ({(app + db) / base_cpu - 1:+.1%})"
                    for variant, (r, app, db) in zip(VARIANTS, results, strict=True)
                )
                errors = sum(r.errors for r, _, _ in results)
                log(f"{scenario}: {line}; errors {errors}; load average {load} -> {loadavg()}")
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
