-- A successful sign-in forgets its (email, address) pair's counted attempts, and takes them (the
-- successful one included) off the email's ceiling: the owner's typos do not count towards it.
WITH cleared AS (
    DELETE FROM sign_in_failures
    WHERE email_key = %(email_key)s AND client = %(client)s
    RETURNING email_key, failures
)
UPDATE sign_in_email_failures AS e
SET failures = greatest(0, e.failures - cleared.failures)
FROM cleared
WHERE e.email_key = cleared.email_key
