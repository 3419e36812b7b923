-- Delete, and leave a tombstone (stamped with this transaction's id) for the changes feed.
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH gone AS (
    DELETE FROM tasks
    WHERE user_id = %(user_id)s AND id = %(id)s
      AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
    RETURNING user_id, id
)
INSERT INTO task_tombstones (user_id, task_id)
SELECT user_id, id FROM gone
RETURNING task_id
