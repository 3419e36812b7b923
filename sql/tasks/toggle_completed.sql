-- Atomic toggle: concurrent toggles serialize on the row lock, none is lost. completed_at follows.
-- %(if_match)s: the versions If-Match accepts, NULL = any (checked in the same statement).
-- A toggle that would complete a recurring task whose next occurrence does not exist yet is left
-- to sql/tasks/complete_recurring.sql (no row back here; the repository goes on there).
UPDATE tasks
SET completed = NOT completed,
    completed_at = CASE WHEN completed THEN NULL ELSE now() END,
    updated_at = greatest(now(), updated_at + interval '1 microsecond'),
    version = version + 1,
    change_xid = pg_current_xact_id()
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
  AND (completed OR recurrence IS NULL OR recurred)
RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
          priority::text, tags, due_at, recurrence, completed_at
