-- Create a task within the caller's quota, in one statement. The upsert creates the caller's users
-- row on first write, or counts the task on it; its row lock serializes the caller's concurrent
-- creates, so the count is exact and the quota never overshoots. At the quota the upsert's WHERE
-- leaves the row alone, `counted` is empty, nothing is inserted and no row comes back.
-- version starts at 1 and change_xid at this transaction's id (the columns' defaults);
-- completed_at is now when created completed. %(tag_keys)s: the tags case-folded (repository).
-- No tags come as NULL (an empty list costs psycopg an array dumper per execute): '{}'.
WITH counted AS (
    INSERT INTO users AS u (id, email, name, task_count)
    VALUES (%(user_id)s, %(email)s, %(name)s, 1)
    ON CONFLICT (id) DO UPDATE
    SET task_count = u.task_count + 1
    WHERE u.task_count < %(max_tasks)s
    RETURNING id
)
INSERT INTO tasks (user_id, title, description, completed, completed_at, priority, tags, tag_keys, due_at, recurrence)
SELECT counted.id, %(title)s, %(description)s, %(completed)s, CASE WHEN %(completed)s THEN now() END,
       %(priority)s::task_priority, coalesce(%(tags)s::text[], '{}'), coalesce(%(tag_keys)s::text[], '{}'), %(due_at)s::timestamptz,
       %(recurrence)s::text
FROM counted
RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
          priority::text, tags, due_at, recurrence, completed_at
