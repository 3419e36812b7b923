-- A stream ended: its place is free at once.
DELETE FROM event_streams WHERE user_id = %(user_id)s AND stream_id = %(stream_id)s
