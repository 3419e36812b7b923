-- The caller's change position (0 before their first write): a list's ETag, without the list.
SELECT coalesce((SELECT change_seq FROM users WHERE id = %(user_id)s), 0)
