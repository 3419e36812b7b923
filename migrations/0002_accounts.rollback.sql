DROP TABLE sign_in_failures;
ALTER TABLE users DROP CONSTRAINT users_email_key_key;
ALTER TABLE users DROP CONSTRAINT users_account_fields;
ALTER TABLE users DROP COLUMN email_key;
ALTER TABLE users DROP COLUMN password_hash;
