-- The caller's users row, created from the token's claims if this is the first time it is needed
-- (as a first task write would). One statement: when the row already exists the INSERT does nothing
-- and the SELECT returns it. A concurrent first insert can make both branches come back empty; the
-- repository then runs the statement once more.
WITH inserted AS (
    INSERT INTO users (id, email, name)
    VALUES (%(id)s, %(email)s, %(name)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, email, name, created_at
)
SELECT id, email, name, created_at FROM inserted
UNION ALL
SELECT id, email, name, created_at FROM users WHERE id = %(id)s
