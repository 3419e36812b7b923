-- The caller's stream-registration lock, until the end of the transaction: counting the caller's
-- open streams and adding one is atomic across workers and instances.
SELECT pg_advisory_xact_lock(hashtextextended('event_streams' || E'\n' || %(user_id)s, 0))
