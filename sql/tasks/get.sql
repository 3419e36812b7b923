SELECT id, user_id, title, description, completed, created_at, updated_at, version,
       priority::text, tags, due_at, recurrence, completed_at
FROM tasks
WHERE user_id = %(user_id)s AND id = %(id)s
