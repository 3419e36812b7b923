SELECT id, user_id, title, description, completed, created_at, updated_at, version
FROM tasks
WHERE user_id = %(user_id)s AND id = %(id)s
