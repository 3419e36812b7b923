-- Tickets never used, a batch at a time.
DELETE FROM event_tickets
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM event_tickets WHERE expires_at <= now() LIMIT %(batch)s
))
