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

import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import (
    ROOT,
    USERS,
    WRITE_SCENARIOS,
    compare,
    loadavg,
    log,
    postgres_server,
    recreate_database,
    running,
    seed_bench,
    token,
    user_task_ids,
    vacuum,
    write_lua_data,
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
                results = compare([none, trigger, streams], scenario, data)
                base, base_cpu = results[0].rps, results[0].server_us + (results[0].database_us or 0.0)
                line = ", ".join(
                    f"{variant} {r.rps:,.0f} rps ({r.rps / base - 1:+.1%}), p99 {r.p99_ms:.1f} ms, CPU/request "
                    f"{r.server_us:.0f} + db {r.database_us or 0.0:.0f} µs "
                    f"({(r.server_us + (r.database_us or 0.0)) / base_cpu - 1:+.1%})"
                    for variant, r in zip(VARIANTS, results, strict=True)
                )
                errors = sum(r.errors for r in results)
                log(f"{scenario}: {line}; errors {errors}; load average {load} -> {loadavg()}")
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
