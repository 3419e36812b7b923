-- Delete a task and uncount it from the caller's quota (users.task_count) in the same statement.
WITH deleted AS (
    DELETE FROM tasks
    WHERE user_id = %(user_id)s AND id = %(id)s
    RETURNING id, user_id
),
uncounted AS (
    UPDATE users
    SET task_count = users.task_count - 1
    FROM deleted
    WHERE users.id = deleted.user_id
)
SELECT id FROM deleted
