-- Delete a task, uncount it from the caller's quota (users.task_count) and leave a tombstone
-- (stamped with this transaction's id) for the changes feed, in one statement.
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH deleted AS (
    DELETE FROM tasks
    WHERE user_id = %(user_id)s AND id = %(id)s
      AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
    RETURNING id, user_id
),
uncounted AS (
    UPDATE users
    SET task_count = users.task_count - 1
    FROM deleted
    WHERE users.id = deleted.user_id
)
INSERT INTO task_tombstones (user_id, task_id)
SELECT user_id, id FROM deleted
RETURNING task_id
