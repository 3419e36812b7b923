-- The filtered total alone (filters and %(pattern)s as in list.sql): used only when a page is empty
-- (offset past the end).
SELECT count(*)
FROM tasks
WHERE user_id = %(user_id)s
  AND (%(completed)s::boolean IS NULL OR completed = %(completed)s::boolean)
  AND (%(priorities)s::task_priority[] IS NULL OR priority = ANY (%(priorities)s::task_priority[]))
  AND (%(tags)s::text[] IS NULL OR (tag_keys @> %(tags)s::text[] AND tag_keys <> '{}'))
  AND (%(due_before)s::timestamptz IS NULL OR due_at < %(due_before)s::timestamptz)
  AND (%(due_after)s::timestamptz IS NULL OR due_at >= %(due_after)s::timestamptz)
  AND (%(overdue)s::boolean IS NULL
       OR (%(overdue)s::boolean AND due_at < now() AND NOT completed)
       OR (NOT %(overdue)s::boolean AND (due_at IS NULL OR due_at >= now() OR completed)))
  AND (%(pattern)s::text IS NULL OR title ~* %(pattern)s::text OR description ~* %(pattern)s::text)
