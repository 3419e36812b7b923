-- One page of the caller's tasks plus the total of the filtered set (window count).
-- %(completed)s: NULL = any; %(pattern)s: an ILIKE pattern already escaped, NULL = no search.
-- Ties are broken by id in the direction of the sort, so paging is stable.
SELECT id, user_id, title, description, completed, created_at, updated_at, version,
       count(*) OVER () AS total
FROM tasks
WHERE user_id = %(user_id)s
  AND (%(completed)s::boolean IS NULL OR completed = %(completed)s::boolean)
  AND (%(pattern)s::text IS NULL OR title ILIKE %(pattern)s::text OR description ILIKE %(pattern)s::text)
ORDER BY
    CASE WHEN %(sort)s::text = 'created_at' THEN created_at END ASC,
    CASE WHEN %(sort)s::text = '-created_at' THEN created_at END DESC,
    CASE WHEN %(sort)s::text = 'updated_at' THEN updated_at END ASC,
    CASE WHEN %(sort)s::text = '-updated_at' THEN updated_at END DESC,
    CASE WHEN %(sort)s::text = 'title' THEN title END ASC,
    CASE WHEN %(sort)s::text = '-title' THEN title END DESC,
    CASE WHEN left(%(sort)s::text, 1) = '-' THEN id END DESC,
    id ASC
LIMIT %(limit)s OFFSET %(offset)s
