-- PUT: title always; every other field only when its set_<field> parameter is true (an omitted key keeps
-- the value; null clears), completed when not NULL.
-- Every right-hand side reads the row's current values (SET sees the old row), so the statement is
-- atomic under concurrency. When something changed, updated_at moves strictly forward, version by
-- one and change_xid to this transaction; when nothing did, all three stay. completed_at follows
-- completed (now when it becomes true, NULL when false). A new recurrence text starts a new series
-- (occurrence 1).
-- No row back when the task does not exist, If-Match names another version, or the result would be
-- a recurrence without a due date (the controller tells which).
-- %(if_match)s: the versions If-Match accepts, NULL = any (checked in the same statement).
UPDATE tasks
SET title = %(title)s::text,
    description = CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
    completed = coalesce(%(completed)s::boolean, completed),
    completed_at = CASE
        WHEN coalesce(%(completed)s::boolean, completed) = completed THEN completed_at
        WHEN %(completed)s::boolean THEN now()
    END,
    priority = CASE WHEN %(set_priority)s::boolean THEN %(priority)s::task_priority ELSE priority END,
    tags = CASE WHEN %(set_tags)s::boolean THEN %(tags)s::text[] ELSE tags END,
    tag_keys = CASE WHEN %(set_tags)s::boolean THEN %(tag_keys)s::text[] ELSE tag_keys END,
    due_at = CASE WHEN %(set_due_at)s::boolean THEN %(due_at)s::timestamptz ELSE due_at END,
    recurrence = CASE WHEN %(set_recurrence)s::boolean THEN %(recurrence)s::text ELSE recurrence END,
    occurrence = CASE
        WHEN %(set_recurrence)s::boolean AND %(recurrence)s::text IS DISTINCT FROM recurrence THEN 1
        ELSE occurrence
    END,
    updated_at = CASE
        WHEN (title, description, completed, priority, tags, due_at, recurrence) IS DISTINCT FROM (
            %(title)s::text,
            CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
            coalesce(%(completed)s::boolean, completed),
            CASE WHEN %(set_priority)s::boolean THEN %(priority)s::task_priority ELSE priority END,
            CASE WHEN %(set_tags)s::boolean THEN %(tags)s::text[] ELSE tags END,
            CASE WHEN %(set_due_at)s::boolean THEN %(due_at)s::timestamptz ELSE due_at END,
            CASE WHEN %(set_recurrence)s::boolean THEN %(recurrence)s::text ELSE recurrence END
        )
        THEN greatest(now(), updated_at + interval '1 microsecond')
        ELSE updated_at
    END,
    version = CASE
        WHEN (title, description, completed, priority, tags, due_at, recurrence) IS DISTINCT FROM (
            %(title)s::text,
            CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
            coalesce(%(completed)s::boolean, completed),
            CASE WHEN %(set_priority)s::boolean THEN %(priority)s::task_priority ELSE priority END,
            CASE WHEN %(set_tags)s::boolean THEN %(tags)s::text[] ELSE tags END,
            CASE WHEN %(set_due_at)s::boolean THEN %(due_at)s::timestamptz ELSE due_at END,
            CASE WHEN %(set_recurrence)s::boolean THEN %(recurrence)s::text ELSE recurrence END
        )
        THEN version + 1
        ELSE version
    END,
    change_xid = CASE
        WHEN (title, description, completed, priority, tags, due_at, recurrence) IS DISTINCT FROM (
            %(title)s::text,
            CASE WHEN %(set_description)s::boolean THEN %(description)s::text ELSE description END,
            coalesce(%(completed)s::boolean, completed),
            CASE WHEN %(set_priority)s::boolean THEN %(priority)s::task_priority ELSE priority END,
            CASE WHEN %(set_tags)s::boolean THEN %(tags)s::text[] ELSE tags END,
            CASE WHEN %(set_due_at)s::boolean THEN %(due_at)s::timestamptz ELSE due_at END,
            CASE WHEN %(set_recurrence)s::boolean THEN %(recurrence)s::text ELSE recurrence END
        )
        THEN pg_current_xact_id()
        ELSE change_xid
    END
WHERE user_id = %(user_id)s AND id = %(id)s
  AND (%(if_match)s::bigint[] IS NULL OR version = ANY (%(if_match)s::bigint[]))
  AND (CASE WHEN %(set_recurrence)s::boolean THEN %(recurrence)s::text ELSE recurrence END IS NULL
       OR CASE WHEN %(set_due_at)s::boolean THEN %(due_at)s::timestamptz ELSE due_at END IS NOT NULL)
RETURNING id, user_id, title, description, completed, created_at, updated_at, version,
          priority::text, tags, due_at, recurrence, completed_at
