-- toolgated's schema on PostgreSQL, version 3: access requests, tool-call
-- hooks and held calls (calls waiting for a person's approval). Same
-- conventions as 0001_initial.sql: the record as `body JSON`, generated
-- columns for lookups and references, DEFERRABLE foreign keys. A hook is
-- policy: writing one moves store_state.policy like the other policy
-- tables.

-- Access requests: a user asks for a requestable access profile.
CREATE TABLE access_requests (
    id         TEXT COLLATE "C" PRIMARY KEY,
    body       JSON NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    profile_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'profile_id') STORED,
    state      TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'state') STORED
);
CREATE INDEX access_requests_user ON access_requests (user_id);
CREATE INDEX access_requests_state ON access_requests (state);

-- Tool-call hooks; a webhook's signing secret is in `secrets`, sealed.
CREATE TABLE hooks (
    id   TEXT COLLATE "C" PRIMARY KEY,
    body JSON NOT NULL
);

-- Held calls; their arguments are in `secrets`, sealed.
CREATE TABLE held_calls (
    id      TEXT COLLATE "C" PRIMARY KEY,
    body    JSON NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    state   TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'state') STORED
);
CREATE INDEX held_calls_user ON held_calls (user_id);
CREATE INDEX held_calls_state ON held_calls (state);
