-- toolgated's schema on PostgreSQL, version 1 (gateway/src/store/postgres.rs).
--
-- Every record table keeps the record exactly as toolgated wrote it, as
-- `body JSON` (JSON, not JSONB: the text round-trips byte for byte, so tool
-- schemas keep their property order and `toolgated store copy` copies
-- records unchanged), plus columns GENERATED from the body for what queries
-- filter on and what references another record. Generated columns cannot
-- drift from the body they describe.
--
-- Ids and names use the "C" collation: rows sort by bytes, as in the
-- embedded store, whatever the database's locale.
--
-- Foreign keys are DEFERRABLE INITIALLY DEFERRED: a change may delete a
-- server and its tools, or write a token and its hash, in any order; they
-- are checked when the change commits.

CREATE TABLE settings (
    id   TEXT COLLATE "C" PRIMARY KEY,
    body JSON NOT NULL
);

CREATE TABLE meta (
    id   TEXT COLLATE "C" PRIMARY KEY,
    body JSON NOT NULL
);

CREATE TABLE servers (
    id          TEXT COLLATE "C" PRIMARY KEY,
    body        JSON NOT NULL,
    name        TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'name') STORED,
    tool_prefix TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'tool_prefix') STORED
);

CREATE TABLE tools (
    id        TEXT COLLATE "C" PRIMARY KEY,
    body      JSON NOT NULL,
    server_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'server_id') STORED
        REFERENCES servers (id) DEFERRABLE INITIALLY DEFERRED,
    name      TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'name') STORED,
    state     TEXT NOT NULL GENERATED ALWAYS AS (body ->> 'state') STORED,
    action    TEXT NOT NULL GENERATED ALWAYS AS (body -> 'classification' ->> 'action') STORED,
    sensitive BOOLEAN NOT NULL
        GENERATED ALWAYS AS ((body -> 'classification' ->> 'sensitive')::boolean) STORED,
    dangerous BOOLEAN NOT NULL
        GENERATED ALWAYS AS ((body -> 'classification' ->> 'dangerous')::boolean) STORED
);
-- ListTools: ordered by (name, id), paged by (name, id) > cursor.
CREATE INDEX tools_name_id ON tools (name, id);
-- ListTools of one server; deleting a server.
CREATE INDEX tools_server_name_id ON tools (server_id, name, id);
CREATE INDEX tools_state_name_id ON tools (state, name, id);

CREATE TABLE toolsets (
    id        TEXT COLLATE "C" PRIMARY KEY,
    body      JSON NOT NULL,
    name      TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'name') STORED,
    kind      TEXT NOT NULL GENERATED ALWAYS AS (body ->> 'kind') STORED,
    -- The server a maintained toolset follows (NULL for custom toolsets).
    server_id TEXT COLLATE "C" GENERATED ALWAYS AS (body ->> 'server_id') STORED
        REFERENCES servers (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX toolsets_server ON toolsets (server_id);

CREATE TABLE access_profiles (
    id   TEXT COLLATE "C" PRIMARY KEY,
    body JSON NOT NULL,
    name TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'name') STORED
);

CREATE TABLE users (
    id     TEXT COLLATE "C" PRIMARY KEY,
    body   JSON NOT NULL,
    email  TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'email') STORED,
    status TEXT NOT NULL GENERATED ALWAYS AS (body ->> 'status') STORED
);
CREATE INDEX users_email ON users (email);

-- Gateway tokens: their SHA-256, never their value.
CREATE TABLE tokens (
    id      TEXT COLLATE "C" PRIMARY KEY,
    body    JSON NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tokens_user ON tokens (user_id);

-- id: the SHA-256 (hex) of a token; body: the token id as a JSON string.
CREATE TABLE token_hashes (
    id       TEXT COLLATE "C" PRIMARY KEY,
    body     JSON NOT NULL,
    token_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body #>> '{}') STORED
        REFERENCES tokens (id) DEFERRABLE INITIALLY DEFERRED
);

-- Users' Salesforce connections; their tokens are in `secrets`, sealed.
CREATE TABLE connections (
    id        TEXT COLLATE "C" PRIMARY KEY,
    body      JSON NOT NULL,
    user_id   TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    server_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'server_id') STORED
        REFERENCES servers (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX connections_user ON connections (user_id);
CREATE INDEX connections_server ON connections (server_id);

-- Secrets sealed by the master key (XChaCha20-Poly1305 with the record key
-- as associated data): consumer secrets, Salesforce refresh and access
-- tokens, the key canary. Never plaintext.
CREATE TABLE secrets (
    key    TEXT COLLATE "C" PRIMARY KEY,
    sealed BYTEA NOT NULL
);

-- The audit log: one sequence across every replica (see store_state). The
-- body is the event without its sequence and time, which are the columns.
CREATE TABLE audit_events (
    seq     BIGINT PRIMARY KEY,
    time    BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    body    JSON NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);

-- Short-lived values any replica may read back (connect links, OAuth state
-- with its PKCE verifier, MCP session state), sealed, under a key the
-- caller derives; gone after expires_at (Unix ms).
CREATE TABLE ephemeral (
    kind       TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    owner      TEXT COLLATE "C" NOT NULL,
    sealed     BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX ephemeral_owner ON ephemeral (kind, owner);
CREATE INDEX ephemeral_expiry ON ephemeral (kind, expires_at);

-- One row: the last audit sequence number handed out and the policy
-- revision (moved by every commit that writes a policy record). Commits
-- that append audit events update this row, so its row lock, held until
-- COMMIT, makes commit order equal sequence order.
CREATE TABLE store_state (
    id       BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    audit_seq BIGINT NOT NULL,
    policy   BIGINT NOT NULL
);
INSERT INTO store_state (id, audit_seq, policy) VALUES (TRUE, 0, 0);
