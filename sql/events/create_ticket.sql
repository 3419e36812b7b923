-- A ticket for one GET /api/events: only its SHA-256 is stored, with the caller it stands for.
INSERT INTO event_tickets (hash, user_id, email, name, expires_at)
VALUES (%(hash)s, %(user_id)s, %(email)s, %(name)s, now() + make_interval(secs => %(ttl_s)s))
