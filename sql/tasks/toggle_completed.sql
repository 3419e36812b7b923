-- Atomic toggle: concurrent toggles serialize on the row lock, none is lost.
UPDATE tasks
SET completed = NOT completed,
    updated_at = greatest(now(), updated_at + interval '1 microsecond')
WHERE user_id = %(user_id)s AND id = %(id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at
