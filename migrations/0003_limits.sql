-- Limits for a service open to the internet (see README, "Robustness").

-- Search: `q` is a case-insensitive substring of title or description (ILIKE '%q%'). A B-tree
-- cannot serve a leading wildcard; pg_trgm's GIN operator class can. btree_gin puts user_id in the
-- same GIN index, so a search reads only the caller's posting lists intersected with q's trigrams,
-- not every user's matching rows. Both extensions are "trusted" (a database owner may create them)
-- and ship in PostgreSQL's contrib and on Neon.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX tasks_user_search_idx ON tasks
    USING gin (user_id, title gin_trgm_ops, description gin_trgm_ops);

-- Quota: each user's number of tasks, kept by the statements that create and delete tasks
-- (sql/tasks/create.sql, sql/tasks/delete.sql) under the users row's lock, so concurrent creates
-- at the limit cannot overshoot. Every statement that inserts or deletes tasks must keep it.
ALTER TABLE users ADD COLUMN task_count integer NOT NULL DEFAULT 0 CHECK (task_count >= 0);
UPDATE users SET task_count = counted.n
FROM (SELECT user_id, count(*) AS n FROM tasks GROUP BY user_id) AS counted
WHERE users.id = counted.user_id;

-- Sign-in failures, now per (email, client address): a guesser elsewhere locks only its own pair,
-- never the owner. The per-email ceiling across all addresses lives in sign_in_email_failures.
-- Expired windows are purged by the statements that write these tables (a few rows per write, so
-- no table grows without bound); the window_ends_at indexes find them.
DROP TABLE sign_in_failures;
CREATE TABLE sign_in_failures (
    email_key       text NOT NULL,
    client          text NOT NULL,
    failures        integer NOT NULL CHECK (failures >= 0),
    window_ends_at  timestamptz NOT NULL,
    PRIMARY KEY (email_key, client)
);
CREATE INDEX sign_in_failures_window_idx ON sign_in_failures (window_ends_at);

CREATE TABLE sign_in_email_failures (
    email_key       text PRIMARY KEY,
    failures        integer NOT NULL CHECK (failures >= 0),
    window_ends_at  timestamptz NOT NULL
);
CREATE INDEX sign_in_email_failures_window_idx ON sign_in_email_failures (window_ends_at);

-- Sign-up and sign-in attempts per client address, in fixed one-minute windows, shared by every
-- worker and instance.
CREATE TABLE auth_client_attempts (
    client          text PRIMARY KEY,
    attempts        integer NOT NULL CHECK (attempts >= 0),
    window_ends_at  timestamptz NOT NULL
);
CREATE INDEX auth_client_attempts_window_idx ON auth_client_attempts (window_ends_at);
