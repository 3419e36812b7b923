# Tasks API commands. `just --list` shows them all.
set dotenv-load := false

python := env("PYTHON", "python")

# Serve with auto-reload; embedded PostgreSQL and a dev secret when unconfigured.
dev:
    {{python}} -m app.dev

# Production-like: uvicorn with HOST/PORT/WORKERS; needs JWT_SECRET and DATABASE_URL; does not migrate.
serve:
    {{python}} -m app.serve

# Apply pending migrations to DATABASE_URL.
migrate:
    {{python}} -m app.migrate apply

# Roll back the latest migration on DATABASE_URL.
rollback:
    {{python}} -m app.migrate rollback

# The whole test suite against a real PostgreSQL (TEST_DATABASE_URL, else embedded).
test *args:
    {{python}} -m pytest {{args}}

# Lint, format check and type check.
check:
    ruff check app tests bench deploy
    ruff format --check app tests bench deploy
    mypy

# Re-resolve requirements.lock from pyproject.toml through PyPI (all extras, every platform, Python 3.11+),
# keeping the current pins where they still fit. `just lock --upgrade` moves everything to the newest.
lock *args:
    {{python}} -m uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
        --custom-compile-command "just lock" --quiet -o requirements.lock {{args}}

# Write the app's OpenAPI document to openapi.json (sorted keys, default settings; no server needed).
openapi:
    {{python}} -m app.openapi

# Throughput/latency benchmark: the service vs a bare-ASGI reference on its schema and on a minimal one (bench/run.py).
bench:
    {{python}} bench/run.py

# Decide each index by measurement: pages of 20 for every filter/sort, with and without each index, and
# what each index costs a write (see bench/indexes.py). Re-run it when a migration adds an index.
indexes:
    {{python}} bench/indexes.py

# Where the p99 of writes comes from: the service beside variants without WAL-flush waits, pool waits
# or GC pauses, interleaved (see bench/tail.py).
tail:
    {{python}} bench/tail.py

# What live updates cost the write path: the service with and without the notify trigger (and with
# other users' streams open), write scenarios interleaved (see bench/events.py).
events-cost:
    {{python}} bench/events.py

# Load test with locust, headless, against a running server (`just dev` or `just serve` first).
# Reports: reports/load_*.csv and reports/load.html. Tokens: JWT_SECRET (or LOAD_SIGNUP=1).
load host=env("LOAD_HOST", "http://127.0.0.1:8000") users=env("LOAD_USERS", "50") spawn_rate=env("LOAD_SPAWN_RATE", "10") duration=env("LOAD_DURATION", "1m"):
    mkdir -p reports
    {{python}} -m locust -f tests/load/locustfile.py --headless --only-summary --host {{host}} \
        --users {{users}} --spawn-rate {{spawn_rate}} --run-time {{duration}} --stop-timeout 5 \
        --csv reports/load --html reports/load.html
