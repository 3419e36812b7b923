-- Sign-up: a new identity with a fresh id, never an existing row. When an account with the same
-- email_key exists (or is being inserted concurrently), nothing is inserted and no row comes back:
-- the unique constraint decides, so of simultaneous sign-ups exactly one succeeds.
INSERT INTO users (id, email, email_key, name, password_hash)
VALUES (gen_random_uuid()::text, %(email)s, %(email_key)s, %(name)s, %(password_hash)s)
ON CONFLICT (email_key) DO NOTHING
RETURNING id, email, name, created_at
