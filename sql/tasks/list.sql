-- One page of the caller's tasks plus the total of the filtered set, in one round trip.
-- The total is a scalar subquery, run once (an InitPlan): an index-only count, which never
-- materializes the rows, where `count(*) OVER ()` spilled the whole filtered set to temporary files
-- for a large user. Its WHERE is the page's, repeated.
-- %(completed)s: NULL = any. Searches (q) run sql/tasks/search.sql.
-- Ties are broken by id in the direction of the sort, so paging is stable.
SELECT id, user_id, title, description, completed, created_at, updated_at, version,
       priority::text, tags, due_at, recurrence, completed_at,
       (SELECT count(*)
        FROM tasks
        WHERE user_id = %(user_id)s
          AND (%(completed)s::boolean IS NULL OR completed = %(completed)s::boolean)
       ) AS total
FROM tasks
WHERE user_id = %(user_id)s
  AND (%(completed)s::boolean IS NULL OR completed = %(completed)s::boolean)
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
