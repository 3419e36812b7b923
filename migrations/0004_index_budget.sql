-- transactional: false
-- The index budget (issue 13): keep only the indexes a query needs at scale, so that toggles and
-- edits are HOT updates. A HOT update writes no index entry at all, but only when no indexed column
-- changes and the row's page has room for the new version; every write moves `updated_at` (and a
-- toggle `completed`), so no index may contain them. Measured with `just indexes` (README,
-- Performance): without them a sorted or filtered page of 20 stays within the p99 budget at the
-- scale a user can reach, while they cost every toggle or edit an index insertion per index, 3-4x
-- the WAL, and the loss of HOT.
-- Not transactional: CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction block, and they do
-- not block writers on a populated table (a plain DROP INDEX waits for ACCESS EXCLUSIVE, and every
-- reader and writer then queues behind it).
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_completed_created_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_updated_idx;
-- Room on each page for new row versions, so an update can stay on its page (HOT). Applies to
-- pages written from now on; takes only a SHARE UPDATE EXCLUSIVE lock and rewrites nothing.
ALTER TABLE tasks SET (fillfactor = 85);
