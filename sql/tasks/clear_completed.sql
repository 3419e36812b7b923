-- DELETE /api/tasks?completed=true: delete the caller's completed tasks, uncount them from the
-- quota (users.task_count) and leave a tombstone for each (stamped with this transaction's id) for
-- the changes feed, in one statement, as sql/tasks/delete.sql does for one task.
WITH deleted AS (
    DELETE FROM tasks
    WHERE user_id = %(user_id)s AND completed
    RETURNING id, user_id
),
uncounted AS (
    UPDATE users
    SET task_count = users.task_count - (SELECT count(*) FROM deleted)
    WHERE users.id = %(user_id)s AND EXISTS (SELECT FROM deleted)
),
buried AS (
    INSERT INTO task_tombstones (user_id, task_id)
    SELECT user_id, id FROM deleted
)
SELECT count(*) FROM deleted
