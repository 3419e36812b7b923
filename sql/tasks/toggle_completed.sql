-- Atomic toggle: concurrent toggles serialize on the row locks, none is lost.
-- The caller's users row is locked first (every write does so, hence no deadlock), and its change
-- position moves only when a task did (a 404 or a 412 changes nothing at all).
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH caller AS (
    SELECT change_seq + 1 AS next FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
), changed AS (
    UPDATE tasks
    SET completed = NOT completed,
        updated_at = greatest(now(), updated_at + interval '1 microsecond'),
        version = version + 1,
        change_seq = (SELECT next FROM caller)
    WHERE user_id = %(user_id)s AND id = %(id)s
      AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
      AND (SELECT next FROM caller) IS NOT NULL
    RETURNING id, user_id, title, description, completed, created_at, updated_at, version, change_seq
), bump AS (
    UPDATE users SET change_seq = changed.change_seq
    FROM changed
    WHERE users.id = %(user_id)s AND changed.change_seq = (SELECT next FROM caller)
)
SELECT id, user_id, title, description, completed, created_at, updated_at, version FROM changed
