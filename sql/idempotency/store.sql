-- In the write's own transaction: a key already stored by a request that committed first is a
-- unique violation, which rolls this request's write back (it then answers the stored one).
INSERT INTO idempotency_keys (user_id, key, fingerprint, status, body, headers)
VALUES (%(user_id)s, %(key)s, %(fingerprint)s, %(status)s, %(body)s, %(headers)s)
