-- Idempotent: setting the value it already has changes nothing (updated_at, version, change_xid,
-- completed_at). %(if_match)s: the versions If-Match accepts, NULL = any.
-- Completing a recurring task whose next occurrence does not exist yet is left to
-- sql/tasks/complete_recurring.sql (no row back here; the repository goes on there).
UPDATE tasks
SET completed = %(completed)s,
    completed_at = CASE WHEN completed = %(completed)s THEN completed_at
                        WHEN %(completed)s THEN now() END,
    updated_at = CASE WHEN completed = %(completed)s THEN updated_at
                      ELSE greatest(now(), updated_at + interval '1 microsecond') END,
    version = CASE WHEN completed = %(completed)s THEN version ELSE version + 1 END,
    change_xid = CASE WHEN completed = %(completed)s THEN change_xid ELSE pg_current_xact_id() END
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
  AND (NOT %(completed)s OR completed OR recurrence IS NULL OR recurred)
RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
          priority::text, tags, due_at, recurrence, completed_at
