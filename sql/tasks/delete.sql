-- Delete, and leave a tombstone for the changes feed.
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH caller AS (
    SELECT change_seq + 1 AS next FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
), gone AS (
    DELETE FROM tasks
    WHERE user_id = %(user_id)s AND id = %(id)s
      AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
      AND (SELECT next FROM caller) IS NOT NULL
    RETURNING id
), bump AS (
    UPDATE users SET change_seq = (SELECT next FROM caller)
    WHERE id = %(user_id)s AND EXISTS (SELECT FROM gone)
)
INSERT INTO task_tombstones (user_id, change_seq, task_id)
SELECT %(user_id)s, (SELECT next FROM caller), id FROM gone
RETURNING task_id
