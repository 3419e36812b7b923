-- Tombstones older than SYNC_TOMBSTONE_TTL_S plus a margin (for transactions that commit after
-- their now(), and clocks), a batch at a time. Cursors older than the TTL are refused (410), so no
-- client can still need them.
DELETE FROM task_tombstones
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM task_tombstones
    WHERE deleted_at <= now() - make_interval(secs => %(ttl_s)s + 3600)
    LIMIT %(batch)s
))
