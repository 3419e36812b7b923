-- One worker's open streams are still open: push their expiry forward (one statement per worker
-- per heartbeat). A row purged meanwhile (the database was away longer than its expiry) comes back,
-- so that the trigger wakes its stream again.
INSERT INTO event_streams (stream_id, user_id, worker, expires_at)
SELECT stream_id, user_id, %(worker)s, now() + make_interval(secs => %(ttl_s)s)
FROM unnest(%(stream_ids)s::uuid[], %(user_ids)s::text[]) AS s (stream_id, user_id)
ON CONFLICT (stream_id) DO UPDATE SET expires_at = excluded.expires_at
