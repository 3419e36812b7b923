-- transactional: false
SET lock_timeout = '3s';
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_priority_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_desc_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_tags_idx;
ALTER TABLE tasks
    DROP CONSTRAINT IF EXISTS tasks_organizing_check,
    DROP COLUMN IF EXISTS recurred,
    DROP COLUMN IF EXISTS occurrence,
    DROP COLUMN IF EXISTS completed_at,
    DROP COLUMN IF EXISTS recurrence,
    DROP COLUMN IF EXISTS due_at,
    DROP COLUMN IF EXISTS tag_keys,
    DROP COLUMN IF EXISTS tags,
    DROP COLUMN IF EXISTS priority;
DROP TYPE IF EXISTS task_priority;
RESET lock_timeout;
