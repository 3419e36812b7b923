-- PUT: title always; description only when %(set_description)s (null clears); completed when not NULL.
-- Every right-hand side reads the row's current values (SET sees the old row), so the statement is
-- atomic under concurrency. updated_at moves strictly forward when something changed, and stays
-- when nothing did.
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
    END
WHERE user_id = %(user_id)s AND id = %(id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at
