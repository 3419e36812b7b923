-- Expired keys, a batch at a time (the purge loop repeats while batches come back full).
DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM idempotency_keys
    WHERE created_at <= now() - make_interval(secs => %(ttl_s)s)
    LIMIT %(batch)s
))
