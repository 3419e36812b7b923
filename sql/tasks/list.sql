-- One page of the caller's tasks plus the total of the filtered set, in one round trip.
-- The total is a scalar subquery, run once (an InitPlan): an index-only count, which never
-- materializes the rows, where `count(*) OVER ()` spilled the whole filtered set to temporary files
-- for a large user. Its WHERE is the page's, repeated.
-- %(completed)s: NULL = any; the organizing filters likewise (priorities, tags, due_before,
-- due_after, overdue: NULL = any; tags are case-folded, every one must be on the task).
-- %(pattern)s: NULL = no search (q); else '***=' followed by q: a regular expression that the
-- director ***= makes a literal string (so %%, _, \ and every regex character are plain data),
-- matched case-insensitively by ~*. Not ILIKE: LIKE's matcher and strpos() both take time in (text
-- length x q length) on crafted text (measured: 10 s and 3.5 s for 2,000 tasks of 9,000 characters
-- and a 200-character q), while the regex engine's DFA stays linear in the text whatever q is
-- (0.16-0.6 s for the same rows, as fast as an ordinary ILIKE). pg_trgm's GIN index
-- tasks_user_search_idx serves ~* as it serves ILIKE: only the caller's rows holding every trigram
-- of q are read.
-- Run unprepared (app/tasks/repository.py): planned for its values, every `%(x)s IS NULL OR ...`
-- that does not apply folds away, so the index of the filter, the sort or q that does is used (a
-- generic plan could use none of them; measured: a search of a 50,000-task user 21.4 ms prepared
-- with q's condition always present, 22.6 ms planned each time, 0.2-0.35 ms of it planning).
-- Ties are broken by id in the direction of the sort, so paging is stable. Keyset paging: with
-- %(after_id)s set, only the rows after the place (%(after_time)s or %(after_text)s, %(after_id)s)
-- in the sort's order (app/tasks/paging.py); the total still counts the whole filtered set.
-- %(limit)s is the page size plus one: the extra row says whether there is a next page.
SELECT id, user_id, title, description, completed, created_at, updated_at, version,
       priority::text, tags, due_at, recurrence, completed_at,
       (SELECT count(*)
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
       ) AS total
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
  AND (%(after_id)s::bigint IS NULL OR CASE %(sort)s::text
        WHEN 'created_at' THEN (created_at, id) > (%(after_time)s::timestamptz, %(after_id)s::bigint)
        WHEN '-created_at' THEN (created_at, id) < (%(after_time)s::timestamptz, %(after_id)s::bigint)
        WHEN 'updated_at' THEN (updated_at, id) > (%(after_time)s::timestamptz, %(after_id)s::bigint)
        WHEN '-updated_at' THEN (updated_at, id) < (%(after_time)s::timestamptz, %(after_id)s::bigint)
        WHEN 'title' THEN (title, id) > (%(after_text)s::text, %(after_id)s::bigint)
        WHEN '-title' THEN (title, id) < (%(after_text)s::text, %(after_id)s::bigint)
        WHEN 'priority' THEN (priority, id) > (%(after_text)s::task_priority, %(after_id)s::bigint)
        WHEN '-priority' THEN (priority, id) < (%(after_text)s::task_priority, %(after_id)s::bigint)
        -- due dates: the tasks without one come last in both directions; a place among them has
        -- no %(after_time)s.
        WHEN 'due_at' THEN CASE WHEN %(after_time)s::timestamptz IS NULL THEN due_at IS NULL AND id > %(after_id)s::bigint
                                ELSE due_at IS NULL OR (due_at, id) > (%(after_time)s::timestamptz, %(after_id)s::bigint) END
        WHEN '-due_at' THEN CASE WHEN %(after_time)s::timestamptz IS NULL THEN due_at IS NULL AND id < %(after_id)s::bigint
                                 ELSE due_at IS NULL OR (due_at, id) < (%(after_time)s::timestamptz, %(after_id)s::bigint) END
    END)
ORDER BY
    CASE WHEN %(sort)s::text = 'created_at' THEN created_at END ASC,
    CASE WHEN %(sort)s::text = '-created_at' THEN created_at END DESC,
    CASE WHEN %(sort)s::text = 'updated_at' THEN updated_at END ASC,
    CASE WHEN %(sort)s::text = '-updated_at' THEN updated_at END DESC,
    CASE WHEN %(sort)s::text = 'title' THEN title END ASC,
    CASE WHEN %(sort)s::text = '-title' THEN title END DESC,
    CASE WHEN %(sort)s::text = 'priority' THEN priority END ASC,
    CASE WHEN %(sort)s::text = '-priority' THEN priority END DESC,
    CASE WHEN %(sort)s::text = 'due_at' THEN due_at END ASC NULLS LAST,
    CASE WHEN %(sort)s::text = '-due_at' THEN due_at END DESC NULLS LAST,
    CASE WHEN left(%(sort)s::text, 1) = '-' THEN id END DESC,
    id ASC
LIMIT %(limit)s OFFSET %(offset)s
