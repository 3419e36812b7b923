-- Idempotent: setting the value it already has changes nothing (updated_at, version, change_seq).
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH caller AS (
    SELECT change_seq + 1 AS next FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
), changed AS (
    UPDATE tasks
    SET completed = %(completed)s,
        updated_at = CASE WHEN completed = %(completed)s THEN updated_at
                          ELSE greatest(now(), updated_at + interval '1 microsecond') END,
        version = CASE WHEN completed = %(completed)s THEN version ELSE version + 1 END,
        change_seq = CASE WHEN completed = %(completed)s THEN change_seq ELSE (SELECT next FROM caller) END
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
