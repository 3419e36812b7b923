-- Sync: versions, the changes feed, idempotency keys.

-- version: 1 at creation, +1 on every write that changes something (the task's ETag).
ALTER TABLE tasks ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- change_xid: the transaction that last changed the task. The changes feed compares it with
-- snapshots (pg_current_snapshot, pg_visible_in_snapshot), which is exact whatever order
-- transactions commit in (README, "Sync"). Rows from before this migration get xid 1, visible in
-- every snapshot; new writes get their own transaction's id. Not indexed: it changes on every write,
-- and an index on it would end HOT updates.
ALTER TABLE tasks ADD COLUMN change_xid xid8 NOT NULL DEFAULT '1';
ALTER TABLE tasks ALTER COLUMN change_xid SET DEFAULT pg_current_xact_id();

-- Deletions, remembered for the changes feed for SYNC_TOMBSTONE_TTL_S, then purged. Insert-only.
CREATE TABLE task_tombstones (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    task_id     bigint NOT NULL,
    change_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, task_id)
);
CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);

-- Idempotency-Key: the stored answer of each key's first request, per user, for IDEMPOTENCY_TTL_S
-- (then purged). fingerprint: SHA-256 of method, path and body, to refuse a key reused for another
-- request. No foreign key: a key is stored even for a user whose first write was a 404.
CREATE TABLE idempotency_keys (
    user_id      text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  bytea NOT NULL,
    status       smallint NOT NULL,
    body         bytea NOT NULL,
    headers      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- The key's lock for the length of the transaction, or an error when a request with the same key
-- holds it (still running). An error, not false: in a pipelined transaction it skips the write
-- queued behind it, so a duplicate neither runs nor waits for the first one's row locks. 64 bits
-- of hash: two different keys colliding at the same instant cost a spurious 409 at worst.
CREATE FUNCTION idempotency_key_lock(p_user_id text, p_key text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(p_user_id || E'\n' || p_key, 0)) THEN
        RAISE EXCEPTION 'idempotency key in use' USING ERRCODE = 'lock_not_available';
    END IF;
END
$$;
