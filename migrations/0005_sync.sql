-- Sync (versions, conditional requests, the changes feed).
-- version: 1 at creation, +1 on every write that changes something (the task's ETag).
ALTER TABLE tasks ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- Per-user change position. Every task write bumps users.change_seq in the same statement and
-- stamps the new value on the task it changed. The UPDATE of the users row holds that row's lock
-- until commit, so one user's writes take their numbers in commit order: a reader that has seen
-- position N has seen every change numbered up to N (see README, "Sync"). Neither column is
-- indexed: both change on every write, and an index on them would end HOT updates.
ALTER TABLE users ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

-- Deletions, remembered for the changes feed for SYNC_TOMBSTONE_TTL_S, then purged. Insert-only,
-- so its indexes cost no HOT update anything.
CREATE TABLE task_tombstones (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    change_seq  bigint NOT NULL,
    task_id     bigint NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, change_seq)
);
CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);
