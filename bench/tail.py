"""`just tail`: where the p99 of writes comes from, one suspect at a time, in one interleaved run.

The service (1 worker, 32 wrk connections, the bench dataset) runs as it ships and beside it in
variants that each remove one suspect; the scenarios run interleaved over all of them, as in
`just bench`, so the machine's other load lands on every variant alike:
- `synchronous_commit=off` (through PGOPTIONS): the commit no longer waits for its WAL flush.
  A measurement only: durability is not something to trade for latency.
- `DB_POOL_MAX_SIZE=32`: one connection per wrk connection, so no request waits for the pool.
- `gc off` (`bench/probe.py`, BENCH_GC=off): no automatic garbage collection pauses.
- `probed`: the service with `bench/probe.py` recording each GC pause and the event loop's lag
  (how late a 5 ms sleep wakes up), summed over the whole run.
It also counts autovacuum and autoanalyze runs on `tasks` during each scenario, and prints the
load average. A variant whose p99 is clearly below the service's names a source of the tail.

The variants' pools may open about 100 connections together: it refuses to run on a server with
fewer free. Knobs: BENCH_TAIL_SCENARIOS (create,update,toggle), and those of `just bench` (BENCH_DURATION_S...).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.probe import LAG_INTERVAL_S  # noqa: E402
from bench.run import (  # noqa: E402
    BENCH_DB,
    USERS,
    Result,
    compare,
    loadavg,
    log,
    postgres_server,
    recreate_database,
    running,
    seed_bench,
    table_stats,
    token,
    user_task_ids,
    vacuum,
    write_lua_data,
)

# label -> (module, environment overrides)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "service": ("app.serve", {}),
    "synchronous_commit=off": ("app.serve", {"PGOPTIONS": "-c synchronous_commit=off"}),
    "pool 32": ("app.serve", {"DB_POOL_MAX_SIZE": "32", "DB_POOL_MIN_SIZE": "32"}),
    "gc off": ("bench.probe", {"BENCH_GC": "off"}),
    "probed": ("bench.probe", {"BENCH_PROBE_OUT": str(ROOT / "reports" / "bench-probe.json")}),
}


def connection_headroom(server_url: str) -> tuple[int, int]:
    """(connections the variants may open, connections the server has free)."""
    needed = 0
    for _, env in VARIANTS.values():
        needed += int(env.get("DB_POOL_MAX_SIZE") or os.environ.get("DB_POOL_MAX_SIZE") or 16)
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)"
        ).fetchone()
    return needed, int(row[0]) if row else 0


def vacuum_counts(url: str) -> tuple[int, ...]:
    return table_stats(url, "tasks", "autovacuum_count", "autoanalyze_count")


def main() -> int:
    scenarios = (os.environ.get("BENCH_TAIL_SCENARIOS") or "create,update,toggle").split(",")
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    started = time.monotonic()
    with postgres_server() as (server_url, database):
        needed, free = connection_headroom(server_url)
        if needed > free:
            # A shared server must not run out of connections because of a benchmark.
            log(f"the variants may open {needed} connections; the server has {free} free: not running")
            return 2
        url = recreate_database(server_url, BENCH_DB)
        seed_bench(url)
        users = [f"bench-{i:03d}" for i in range(1, USERS + 1)]
        ids = user_task_ids(url, users)
        writers = [f"writer-{i:03d}" for i in range(1, USERS + 1)]
        data = write_lua_data(reports / "bench-data.lua", ids, writers)
        probe = token(users[0])
        rows: list[tuple[str, str, Result, str, tuple[int, ...]]] = []
        with contextlib.ExitStack() as stack:
            servers = {
                label: stack.enter_context(running(module, url, probe, env=env))
                for label, (module, env) in VARIANTS.items()
            }
            for scenario in scenarios:
                vacuum(url)
                load, counts = loadavg(), vacuum_counts(url)
                log(f"{scenario}: {len(servers)} variants, interleaved (load average {load})")
                results = compare(list(servers.values()), scenario, data)
                after = vacuum_counts(url)
                ran: tuple[int, ...] = (after[0] - counts[0], after[1] - counts[1])
                for label, result in zip(servers, results, strict=True):
                    rows.append((scenario, label, result, f"{load}-{loadavg()}", ran))
    print()
    print(f"{database}; 1 worker each; p50/p99: median over the interleaved slices")
    header = f"{'scenario':<8} {'variant':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'errors':>6}"
    print(header + "  load         autovacuum/analyze during the scenario")
    print("-" * (len(header) + 50))
    for scenario, label, r, load, ran in rows:
        print(
            f"{scenario:<8} {label:<24} {r.rps:>7,.0f} {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.max_us / 1000:>7.1f} "
            f"{r.error_text():>6}  {load:<12} {ran[0]}/{ran[1]}"
        )
    probe_file = ROOT / "reports" / "bench-probe.json"
    if probe_file.exists():
        found = json.loads(probe_file.read_text())
        print()
        print("probed service, whole run: garbage collections (count, total / p99 / max pause ms) and event loop lag:")
        for gen, g in found["gc"].items():
            print(
                f"  gen {gen}: {g['count']:>6,} collections, total {g['total_ms']:.1f} ms, "
                f"p99 {g['p99_ms']:.2f} ms, max {g['max_ms']:.2f} ms"
            )
        lag = found["loop_lag"]
        print(
            f"  loop lag over {lag['samples']:,} samples of a {LAG_INTERVAL_S * 1000:.0f} ms sleep: "
            f"p50 {lag['p50_ms']:.2f} ms, p99 {lag['p99_ms']:.2f} ms, max {lag['max_ms']:.1f} ms"
        )
        probe_file.unlink()
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
