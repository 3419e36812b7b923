-- Using a ticket deletes it: single use, even when two requests race with the same one.
DELETE FROM event_tickets
WHERE hash = %(hash)s AND expires_at > now()
RETURNING user_id, email, name
