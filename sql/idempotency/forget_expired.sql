-- A key past its lifetime is free again (the purge may not have come by yet).
DELETE FROM idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s AND created_at <= now() - make_interval(secs => %(ttl_s)s)
