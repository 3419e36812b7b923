DROP TABLE task_tombstones;
ALTER TABLE tasks DROP COLUMN change_seq;
ALTER TABLE users DROP COLUMN change_seq;
ALTER TABLE tasks DROP COLUMN version;
