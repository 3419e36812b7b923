-- The total of a search alone (see search.sql): used only when a page is empty (offset past the end).
SELECT count(*)
FROM tasks
WHERE user_id = %(user_id)s
  AND (%(completed)s::boolean IS NULL OR completed = %(completed)s::boolean)
  AND (title ~* %(pattern)s::text OR description ~* %(pattern)s::text)
