-- Built-in accounts: a users row with a password hash is an account; a row without one is an
-- identity that arrived through an external token (its email is an unverified claim).
-- email_key: an account's email, trimmed and lowercased by the service (not with SQL lower(), whose
-- result depends on the database's locale: under "C" it leaves non-ASCII letters as they are).
ALTER TABLE users ADD COLUMN password_hash text;
ALTER TABLE users ADD COLUMN email_key text;
ALTER TABLE users ADD CONSTRAINT users_account_fields
    CHECK ((password_hash IS NULL) = (email_key IS NULL) AND (password_hash IS NULL OR email IS NOT NULL));

-- One account per case-insensitive address. External identities have no email_key (NULLs never
-- collide), so an external token whose email claim equals an account's email still gets its row
-- (and its tasks), and sign-up never fails or merges because of an unverified claim.
ALTER TABLE users ADD CONSTRAINT users_email_key_key UNIQUE (email_key);

-- Sign-in lockout, per email_key (known or not, so that lockout reveals nothing). A window opens
-- at the first counted attempt and lasts AUTH_LOCKOUT_S; it is kept here, not in a worker's
-- memory, so that it holds across workers, machines and restarts.
CREATE TABLE sign_in_failures (
    email_key       text PRIMARY KEY,
    failures        integer NOT NULL CHECK (failures >= 0),
    window_ends_at  timestamptz NOT NULL
);
