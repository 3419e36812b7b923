-- Complete a recurring task and create its next occurrence, in one statement: exactly once, since
-- the task is marked `recurred` in the same statement, and only at the version the next due date
-- (%(next_due_at)s, stepped by the application with dateutil; NULL: the rule is exhausted) was
-- computed from: a concurrent change makes this match no row, and the repository starts over.
-- The next occurrence copies title, description, priority and tags, keeps the recurrence text and
-- is the series' next (occurrence + 1); it counts on the caller's quota (users.task_count, under
-- the users row's lock as in create.sql): at the quota `counted` is empty, no occurrence is
-- inserted, and the repository rolls the completion back (409).
WITH done AS (
    UPDATE tasks
    SET completed = true,
        completed_at = now(),
        updated_at = greatest(now(), updated_at + interval '1 microsecond'),
        version = version + 1,
        change_xid = pg_current_xact_id(),
        recurred = true
    WHERE user_id = %(user_id)s AND id = %(id)s AND version = %(version)s
      AND NOT completed AND NOT recurred AND recurrence IS NOT NULL
    RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
              priority, tags, due_at, recurrence, completed_at, tag_keys, occurrence
),
counted AS (
    UPDATE users
    SET task_count = users.task_count + 1
    FROM done
    WHERE users.id = done.user_id
      AND %(next_due_at)s::timestamptz IS NOT NULL
      AND users.task_count < %(max_tasks)s
    RETURNING users.id
),
next AS (
    INSERT INTO tasks (user_id, title, description, priority, tags, tag_keys, due_at, recurrence, occurrence)
    SELECT done.user_id, done.title, done.description, done.priority, done.tags, done.tag_keys,
           %(next_due_at)s::timestamptz, done.recurrence, done.occurrence + 1
    FROM done JOIN counted ON true
    RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
              priority::text AS priority, tags, due_at, recurrence, completed_at
)
SELECT done.id, done.user_id, done.title, done.description, done.completed, done.created_at,
       done.updated_at, done.version, done.priority::text, done.tags, done.due_at, done.recurrence,
       done.completed_at,
       next.id, next.user_id, next.title, next.description, next.completed, next.created_at,
       next.updated_at, next.version, next.priority, next.tags, next.due_at, next.recurrence,
       next.completed_at
FROM done LEFT JOIN next ON true
