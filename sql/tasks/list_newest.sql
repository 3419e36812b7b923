-- The default list (newest first, ties by id): list.sql with its sort spelled out, so that the
-- prepared statement's generic plan (PostgreSQL switches to one after a few executions) still walks
-- tasks_user_created_idx in order and stops after the page, for a user with 50,000 tasks as for
-- one with 20. list.sql's ORDER BY CASE cannot use an index in a generic plan (it sorted all of a
-- large user's rows: 80-130 ms), so the repository runs it unprepared, with a plan for its values.
-- One page of the caller's tasks plus the total of the filtered set, in one round trip.
-- The total is a scalar subquery, run once (an InitPlan): an index-only count, which never
-- materializes the rows, where `count(*) OVER ()` spilled the whole filtered set to temporary files
-- for a large user. Its WHERE is the page's, repeated.
-- %(completed)s: NULL = any. Searches (q) and the other filters and sorts run sql/tasks/list.sql.
-- Keyset paging (app/tasks/paging.py): the rows after (%(after_time)s, %(after_id)s) in this order;
-- without a cursor the place is (infinity, max id), before every row, so that the condition is
-- always there and the generic plan starts the index scan at the cursor instead of filtering.
-- %(limit)s is the page size plus one: the extra row says whether there is a next page.
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
  AND (created_at, id) < (coalesce(%(after_time)s::timestamptz, 'infinity'),
                          coalesce(%(after_id)s::bigint, 9223372036854775807))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
