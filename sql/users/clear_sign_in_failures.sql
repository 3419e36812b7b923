-- A successful sign-in forgets the email's counted attempts.
DELETE FROM sign_in_failures
WHERE email_key = %(email_key)s
