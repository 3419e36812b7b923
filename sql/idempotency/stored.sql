SELECT fingerprint, status, body, headers
FROM idempotency_keys
WHERE user_id = %(user_id)s AND key = %(key)s AND created_at > now() - make_interval(secs => %(ttl_s)s)
