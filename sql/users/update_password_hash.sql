-- Re-hash on sign-in when the Argon2 parameters have been raised since the hash was made.
UPDATE users
SET password_hash = %(password_hash)s
WHERE id = %(id)s AND password_hash IS NOT NULL
