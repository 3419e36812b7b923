-- transactional: false
-- Organizing tasks: priority, tags, due dates, recurrence, completed_at (README, "Organizing tasks").
-- Runs on a populated table without a long lock:
-- - ADD COLUMN with a constant default (or none) changes only the catalog (PostgreSQL 11+): no
--   rewrite, no scan; it still needs a moment of ACCESS EXCLUSIVE, so lock_timeout makes it give
--   up after 3 s (and the operator retry: every statement is idempotent) rather than queue every
--   reader and writer behind a long transaction for as long as that one lasts;
-- - the CHECK constraints are added NOT VALID (no scan under the exclusive lock) and validated
--   afterwards under SHARE UPDATE EXCLUSIVE, which lets reads and writes through;
-- - the indexes are built CONCURRENTLY, which cannot run in a transaction block: hence
--   `transactional: false` (each statement commits on its own, as in 0004).
-- Every existing row stays valid: priority 'none', no tags, no due date, no recurrence.
SET lock_timeout = '3s';

-- none < low < medium < high: an enum sorts in the order of its labels (sort=priority).
-- Every statement here can run again: a run that gave up on lock_timeout is simply retried.
DO $$
BEGIN
    CREATE TYPE task_priority AS ENUM ('none', 'low', 'medium', 'high');
EXCEPTION WHEN duplicate_object THEN NULL;
END
$$;

-- tags: as given (trimmed, the first spelling of each case-insensitive duplicate, in order).
-- tag_keys: the same tags case-folded, in the same order, written with them: what tag= and
-- GET /api/tags match and group by (the application folds case, so both sides fold alike).
-- occurrence: the task's place in its recurring series (1 = the first), for COUNT.
-- recurred: its next occurrence has been created (or the rule was exhausted): a later completion
-- creates nothing more.
-- Neither tag_keys, occurrence nor recurred is ever returned to clients.
ALTER TABLE tasks
    ADD COLUMN IF NOT EXISTS priority task_priority NOT NULL DEFAULT 'none',
    ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS tag_keys text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS due_at timestamptz,
    ADD COLUMN IF NOT EXISTS recurrence text,
    ADD COLUMN IF NOT EXISTS completed_at timestamptz,
    ADD COLUMN IF NOT EXISTS occurrence integer NOT NULL DEFAULT 1,
    ADD COLUMN IF NOT EXISTS recurred boolean NOT NULL DEFAULT false;

ALTER TABLE tasks
    DROP CONSTRAINT IF EXISTS tasks_organizing_check,
    ADD CONSTRAINT tasks_organizing_check CHECK (
        cardinality(tags) <= 20
        AND cardinality(tag_keys) = cardinality(tags)
        AND (recurrence IS NULL OR (due_at IS NOT NULL AND length(recurrence) <= 200))
        AND (completed OR completed_at IS NULL)
        AND occurrence >= 1
    ) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_organizing_check;

RESET lock_timeout;

-- Indexes, each decided with `just indexes` (README, "The index budget"). None contains a column
-- that a toggle or a plain edit changes, so those stay HOT.
-- IF EXISTS first: an interrupted CREATE INDEX CONCURRENTLY leaves an invalid index behind.
-- tag=: every tag named (case-folded) must be in tag_keys: `tag_keys @> ARRAY[...]`, per user.
-- Partial: untagged tasks (most, and every task of a client that knows only the seven original
-- keys) are not in it, so their creates and their non-HOT edits never write it. The statements
-- that use it spell the predicate (`tag_keys <> '{}'`) beside `@>`, which the planner needs to
-- prove that the index covers the rows asked for.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_tags_idx;
CREATE INDEX CONCURRENTLY tasks_user_tags_idx ON tasks USING gin (user_id, tag_keys) WHERE tag_keys <> '{}';
-- sort=due_at, due_before=, due_after=, overdue=true.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_idx;
CREATE INDEX CONCURRENTLY tasks_user_due_idx ON tasks (user_id, due_at, id);
-- sort=-due_at: the tasks without a due date last, which the index above read backwards cannot
-- give (it puts them first).
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_due_desc_idx;
CREATE INDEX CONCURRENTLY tasks_user_due_desc_idx ON tasks (user_id, due_at DESC NULLS LAST, id DESC);
-- priority= (its total counted from the index alone) and sort=priority / -priority.
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_priority_idx;
CREATE INDEX CONCURRENTLY tasks_user_priority_idx ON tasks (user_id, priority, id);
