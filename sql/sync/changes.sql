-- One page of the caller's changes, oldest first, between two snapshots: the tasks whose last
-- change (change_xid) is not visible in %(from)s but is in %(to)s (NULL: this statement's own,
-- i.e. now), after (%(xid)s, %(id)s) in (change_xid, id) order, as upserts in their current state;
-- and the deletions in the same window (unless %(deletions)s is false: a snapshot needs none).
-- The first row carries the current snapshot and the database's clock even when the page is empty;
-- one statement, so all of it is one snapshot. No index serves change_xid (it changes on every
-- write): the caller's rows are read through the primary key and filtered, a cost bounded by the
-- task quota.
SELECT pg_current_snapshot()::text, extract(epoch FROM statement_timestamp())::float8,
       page.change_xid::text, page.deleted, page.id, page.user_id, page.title, page.description,
       page.completed, page.created_at, page.updated_at, page.version, page.priority, page.tags,
       page.due_at, page.recurrence, page.completed_at
FROM (SELECT) AS one
LEFT JOIN LATERAL (
    SELECT change_xid, false AS deleted, id, user_id, title, description, completed, created_at, updated_at, version,
           priority::text AS priority, tags, due_at, recurrence, completed_at
    FROM tasks
    WHERE user_id = %(user_id)s
      AND NOT pg_visible_in_snapshot(change_xid, %(from)s::pg_snapshot)
      AND pg_visible_in_snapshot(change_xid, coalesce(%(to)s::pg_snapshot, pg_current_snapshot()))
      AND (change_xid, id) > (%(xid)s::xid8, %(id)s::bigint)
    UNION ALL
    SELECT change_xid, true, task_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM task_tombstones
    WHERE user_id = %(user_id)s AND %(deletions)s::boolean
      AND NOT pg_visible_in_snapshot(change_xid, %(from)s::pg_snapshot)
      AND pg_visible_in_snapshot(change_xid, coalesce(%(to)s::pg_snapshot, pg_current_snapshot()))
      AND (change_xid, task_id) > (%(xid)s::xid8, %(id)s::bigint)
    ORDER BY 1, 3
    LIMIT %(limit)s
) AS page ON true
ORDER BY page.change_xid, page.id
