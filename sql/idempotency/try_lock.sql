-- Raises lock_not_available while another request with this key is running (see the migration).
SELECT idempotency_key_lock(%(user_id)s, %(key)s)
