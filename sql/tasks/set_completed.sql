-- Idempotent: setting the value it already has changes nothing (updated_at, version, change_xid).
-- %(if_match)s: the versions If-Match accepts, NULL = any.
UPDATE tasks
SET completed = %(completed)s,
    updated_at = CASE WHEN completed = %(completed)s THEN updated_at
                      ELSE greatest(now(), updated_at + interval '1 microsecond') END,
    version = CASE WHEN completed = %(completed)s THEN version ELSE version + 1 END,
    change_xid = CASE WHEN completed = %(completed)s THEN change_xid ELSE pg_current_xact_id() END
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
RETURNING id, user_id, title, description, completed, created_at, updated_at, version
