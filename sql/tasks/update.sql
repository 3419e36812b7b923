-- PUT: title always; description only when %(set_description)s (null clears); completed when not NULL.
-- Every right-hand side reads the row's current values (SET sees the old row), so the statement is
-- atomic under concurrency. When something changed, updated_at moves strictly forward, version by
-- one and change_xid to this transaction; when nothing did, all three stay.
-- %(if_match)s: the versions If-Match accepts, NULL = any (checked in the same statement).
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
    change_xid = CASE
        WHEN (title, description, completed) IS DISTINCT FROM (
            %(title)s::text,
            CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
            coalesce(%(completed)s::boolean, completed)
        )
        THEN pg_current_xact_id()
        ELSE change_xid
    END
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
RETURNING id, user_id, title, description, completed, created_at, updated_at, version
