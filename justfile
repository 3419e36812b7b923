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
    ruff check app tests
    ruff format --check app tests
    mypy
