DELETE FROM tasks
WHERE user_id = %(user_id)s AND id = %(id)s
RETURNING id
