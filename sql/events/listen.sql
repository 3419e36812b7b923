-- The worker's listener: every NOTIFY of the trigger notify_task_change (migration 0006)
-- arrives on this channel, with the user id as payload.
LISTEN task_changes
