-- Counts a sign-in attempt for an email BEFORE its password is checked (a success clears the count
-- afterwards), in one atomic statement, so concurrent guesses can never exceed the limit.
-- The window opens at the first counted attempt and lasts %(lockout_s)s; an expired window starts
-- over. Returns the account for the email (if any) and, when the count is over the limit,
-- retry_after_s: whole seconds until the window closes (NULL = not locked).
WITH attempt AS (
    INSERT INTO sign_in_failures AS f (email_key, failures, window_ends_at)
    VALUES (%(email_key)s, 1, now() + make_interval(secs => %(lockout_s)s))
    ON CONFLICT (email_key) DO UPDATE
    SET failures = CASE WHEN f.window_ends_at <= now() THEN 1
                        ELSE least(f.failures + 1, %(max_failures)s + 1) END,
        window_ends_at = CASE WHEN f.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE f.window_ends_at END
    RETURNING failures, window_ends_at
)
SELECT CASE WHEN attempt.failures > %(max_failures)s
            THEN greatest(1, ceil(extract(epoch FROM attempt.window_ends_at - now())))::integer
       END AS retry_after_s,
       u.id, u.email, u.name, u.created_at, u.password_hash
FROM attempt
LEFT JOIN users AS u ON u.email_key = %(email_key)s
