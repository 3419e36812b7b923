-- Idempotent: setting the value it already has changes nothing, updated_at included.
UPDATE tasks
SET completed = %(completed)s,
    updated_at = CASE WHEN completed = %(completed)s THEN updated_at
                      ELSE greatest(now(), updated_at + interval '1 microsecond') END
WHERE user_id = %(user_id)s AND id = %(id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at
