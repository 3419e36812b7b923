ALTER TABLE tasks RESET (fillfactor);
-- IF EXISTS first: an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index behind.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_updated_idx;
CREATE INDEX CONCURRENTLY tasks_user_updated_idx ON tasks (user_id, updated_at DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_completed_created_idx;
CREATE INDEX CONCURRENTLY tasks_user_completed_created_idx ON tasks (user_id, completed, created_at DESC, id DESC);
