DROP TRIGGER task_tombstones_notify ON task_tombstones;
DROP TRIGGER tasks_notify_update ON tasks;
DROP TRIGGER tasks_notify_insert ON tasks;
DROP FUNCTION notify_task_change();
DROP TABLE event_tickets;
DROP TABLE event_streams;
