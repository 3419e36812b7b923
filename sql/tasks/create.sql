-- Create a task; the caller's users row is created on first write, in the same statement.
-- version starts at 1 and change_xid at this transaction's id (the columns' defaults).
WITH caller AS (
    INSERT INTO users (id, email, name)
    VALUES (%(user_id)s, %(email)s, %(name)s)
    ON CONFLICT (id) DO NOTHING
)
INSERT INTO tasks (user_id, title, description, completed)
VALUES (%(user_id)s, %(title)s, %(description)s, %(completed)s)
RETURNING id, user_id, title, description, completed, created_at, updated_at, version
