DROP FUNCTION idempotency_key_lock(text, text);
DROP TABLE idempotency_keys;
DROP TABLE task_tombstones;
ALTER TABLE tasks DROP COLUMN change_xid;
ALTER TABLE tasks DROP COLUMN version;
