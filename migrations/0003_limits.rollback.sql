DROP TABLE auth_client_attempts;
DROP TABLE sign_in_email_failures;
DROP TABLE sign_in_failures;
CREATE TABLE sign_in_failures (
    email_key       text PRIMARY KEY,
    failures        integer NOT NULL CHECK (failures >= 0),
    window_ends_at  timestamptz NOT NULL
);
ALTER TABLE users DROP COLUMN task_count;
DROP INDEX tasks_user_search_idx;
-- The extensions stay: other objects may use them, and they cost nothing unused.
