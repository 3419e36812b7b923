-- What completing a recurring task needs to know (sql/tasks/complete_recurring.sql): the version it
-- will be applied to, and the rule, due date and place in the series to step from.
SELECT version, completed, recurred, recurrence, due_at, occurrence
FROM tasks
WHERE user_id = %(user_id)s AND id = %(id)s
