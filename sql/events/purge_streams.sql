-- Rows of streams whose worker stopped renewing them (it died), a batch at a time.
DELETE FROM event_streams
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM event_streams WHERE expires_at <= now() LIMIT %(batch)s
))
