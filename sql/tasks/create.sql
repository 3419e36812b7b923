-- Create a task. The caller's users row is created on first write, or its change position bumped,
-- in the same statement: that row's lock orders this user's writes (see migrations/0005_sync.sql).
WITH caller AS (
    INSERT INTO users (id, email, name, change_seq)
    VALUES (%(user_id)s, %(email)s, %(name)s, 1)
    ON CONFLICT (id) DO UPDATE SET change_seq = users.change_seq + 1
    RETURNING change_seq
)
INSERT INTO tasks (user_id, title, description, completed, change_seq)
SELECT %(user_id)s::text, %(title)s::text, %(description)s::text, %(completed)s::boolean, change_seq
FROM caller
RETURNING id, user_id, title, description, completed, created_at, updated_at, version
