-- Users: a text id so identities from any issuer fit (UUIDs, numeric ids, Auth0 "auth0|..." ids).
CREATE TABLE users (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    email       text,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Tasks: the key leads with user_id so that every statement (all carry user_id) touches one
-- user's rows, and so that a distributed PostgreSQL (Citus) can shard by user_id.
CREATE TABLE tasks (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        varchar(500) NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 500),
    description  varchar(10000),
    completed    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);

-- The default list (newest first, ties by id) and its completed filter.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_user_completed_created_idx ON tasks (user_id, completed, created_at DESC, id DESC);
-- sort=updated_at / -updated_at
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at DESC, id DESC);
