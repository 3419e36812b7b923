-- Register a stream when the caller has fewer than %(max_streams)s live ones (under lock_user.sql);
-- no row comes back at the cap. The caller's expired rows (a worker that died) are dropped first.
WITH expired AS (
    DELETE FROM event_streams
    WHERE user_id = %(user_id)s AND expires_at <= now()
    RETURNING stream_id
)
INSERT INTO event_streams (stream_id, user_id, worker, expires_at)
SELECT %(stream_id)s, %(user_id)s, %(worker)s, now() + make_interval(secs => %(ttl_s)s)
WHERE (
    SELECT count(*) FROM event_streams
    WHERE user_id = %(user_id)s AND expires_at > now()
) < %(max_streams)s
RETURNING stream_id
