-- Atomic toggle: concurrent toggles serialize on the row lock, none is lost.
-- %(if_match)s: the versions If-Match accepts, NULL = any (checked in the same statement).
UPDATE tasks
SET completed = NOT completed,
    updated_at = greatest(now(), updated_at + interval '1 microsecond'),
    version = version + 1,
    change_xid = pg_current_xact_id()
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
RETURNING id, user_id, title, description, completed, created_at, updated_at, version
