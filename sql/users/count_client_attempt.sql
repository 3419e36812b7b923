-- Counts a sign-up or sign-in attempt from a client address in a fixed one-minute window that
-- opens at its first attempt (AUTH_RATE_PER_MIN, shared by every worker and instance). Returns
-- retry_after_s, whole seconds until the window closes, when the address is over the limit
-- (NULL = allowed). The count stops at the limit + 1, so refused attempts change nothing more.
-- `purged` deletes a few expired windows of other addresses: each attempt adds at most one row
-- and removes up to eight dead ones, so the table holds little more than the live windows.
WITH purged AS (
    DELETE FROM auth_client_attempts
    WHERE client IN (
        SELECT client FROM auth_client_attempts
        WHERE window_ends_at <= now() AND client <> %(client)s
        LIMIT 8
        FOR UPDATE SKIP LOCKED
    )
),
attempt AS (
    INSERT INTO auth_client_attempts AS a (client, attempts, window_ends_at)
    VALUES (%(client)s, 1, now() + interval '1 minute')
    ON CONFLICT (client) DO UPDATE
    SET attempts = CASE WHEN a.window_ends_at <= now() THEN 1
                        ELSE least(a.attempts + 1, %(max_attempts)s + 1) END,
        window_ends_at = CASE WHEN a.window_ends_at <= now() THEN excluded.window_ends_at
                              ELSE a.window_ends_at END
    RETURNING attempts, window_ends_at
)
SELECT CASE WHEN attempts > %(max_attempts)s
            THEN greatest(1, ceil(extract(epoch FROM window_ends_at - now())))::integer
       END AS retry_after_s
FROM attempt
