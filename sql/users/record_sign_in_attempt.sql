-- Counts a sign-in attempt BEFORE its password is checked (a success clears it afterwards), in one
-- atomic statement, so concurrent guesses can never exceed the limits. Two counters, each in a
-- window that opens at its first counted attempt and lasts %(lockout_s)s (an expired window starts
-- over):
--   pair:  per (email, client address), locked past %(max_failures)s: a guesser elsewhere locks
--          only its own pair, never the owner's;
--   email: per email across all addresses, locked past %(max_per_email)s: distributed guessing.
--          Counted only while the pair is not locked, so one locked-out address cannot use up the
--          email's ceiling by hammering on.
-- Returns the account for the email (if any) and retry_after_s, whole seconds until the window
-- that locks closes (NULL = not locked). `purged_*` delete a few expired windows of other keys, so
-- the tables hold little more than the live windows.
WITH purged_pairs AS (
    DELETE FROM sign_in_failures
    WHERE (email_key, client) IN (
        SELECT email_key, client FROM sign_in_failures
        WHERE window_ends_at <= now() AND (email_key, client) <> (%(email_key)s, %(client)s)
        LIMIT 8
        FOR UPDATE SKIP LOCKED
    )
),
purged_emails AS (
    DELETE FROM sign_in_email_failures
    WHERE email_key IN (
        SELECT email_key FROM sign_in_email_failures
        WHERE window_ends_at <= now() AND email_key <> %(email_key)s
        LIMIT 8
        FOR UPDATE SKIP LOCKED
    )
),
pair AS (
    INSERT INTO sign_in_failures AS f (email_key, client, failures, window_ends_at)
    VALUES (%(email_key)s, %(client)s, 1, now() + make_interval(secs => %(lockout_s)s))
    ON CONFLICT (email_key, client) DO UPDATE
    SET failures = CASE WHEN f.window_ends_at <= now() THEN 1
                        ELSE least(f.failures + 1, %(max_failures)s + 1) END,
        window_ends_at = CASE WHEN f.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE f.window_ends_at END
    RETURNING failures, window_ends_at
),
email AS (
    INSERT INTO sign_in_email_failures AS e (email_key, failures, window_ends_at)
    SELECT %(email_key)s, 1, now() + make_interval(secs => %(lockout_s)s)
    FROM pair
    WHERE pair.failures <= %(max_failures)s
    ON CONFLICT (email_key) DO UPDATE
    SET failures = CASE WHEN e.window_ends_at <= now() THEN 1
                        ELSE least(e.failures + 1, %(max_per_email)s + 1) END,
        window_ends_at = CASE WHEN e.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE e.window_ends_at END
    RETURNING failures, window_ends_at
)
SELECT CASE WHEN pair.failures > %(max_failures)s
            THEN greatest(1, ceil(extract(epoch FROM pair.window_ends_at - now())))::integer
            WHEN email.failures > %(max_per_email)s
            THEN greatest(1, ceil(extract(epoch FROM email.window_ends_at - now())))::integer
       END AS retry_after_s,
       u.id, u.email, u.name, u.created_at, u.password_hash
FROM pair
LEFT JOIN email ON true
LEFT JOIN users AS u ON u.email_key = %(email_key)s
