-- PUT: title always; description only when %(set_description)s (null clears); completed when not NULL.
-- Every right-hand side reads the row's current values (SET sees the old row), so the statement is
-- atomic under concurrency. When something changed, updated_at moves strictly forward, version by
-- one and change_seq to the caller's new position; when nothing did, all three stay.
-- %(if_match)s: the versions If-Match accepts, NULL = any.
WITH caller AS (
    SELECT change_seq + 1 AS next FROM users WHERE id = %(user_id)s FOR NO KEY UPDATE
), changed AS (
    UPDATE tasks
    SET title = %(title)s::text,
        description = CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
        completed = coalesce(%(completed)s::boolean, completed),
        updated_at = CASE
            WHEN (title, description, completed) IS DISTINCT FROM (
                %(title)s::text,
                CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
                coalesce(%(completed)s::boolean, completed)
            )
            THEN greatest(now(), updated_at + interval '1 microsecond')
            ELSE updated_at
        END,
        version = CASE
            WHEN (title, description, completed) IS DISTINCT FROM (
                %(title)s::text,
                CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
                coalesce(%(completed)s::boolean, completed)
            )
            THEN version + 1
            ELSE version
        END,
        change_seq = CASE
            WHEN (title, description, completed) IS DISTINCT FROM (
                %(title)s::text,
                CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
                coalesce(%(completed)s::boolean, completed)
            )
            THEN (SELECT next FROM caller)
            ELSE change_seq
        END
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
