-- toolgated's schema on PostgreSQL, version 2: the MCP authorization
-- server's OAuth clients, AI clients as governed records, and OAuth grants
-- (refresh token families). Same conventions as 0001_initial.sql: the
-- record as `body JSON`, generated columns for lookups and references,
-- DEFERRABLE foreign keys.

-- OAuth clients: DCR registrations (RFC 7591) and fetched Client ID
-- Metadata Documents; id is the client_id.
CREATE TABLE oauth_clients (
    id   TEXT COLLATE "C" PRIMARY KEY,
    body JSON NOT NULL
);

-- AI clients: one per user and OAuth client, and per access token.
CREATE TABLE ai_clients (
    id            TEXT COLLATE "C" PRIMARY KEY,
    body          JSON NOT NULL,
    owner_user_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'owner_user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    client_id     TEXT COLLATE "C" GENERATED ALWAYS AS (body ->> 'client_id') STORED,
    token_id      TEXT COLLATE "C" GENERATED ALWAYS AS (body ->> 'token_id') STORED
        REFERENCES tokens (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX ai_clients_owner ON ai_clients (owner_user_id);
CREATE INDEX ai_clients_client ON ai_clients (client_id);
CREATE INDEX ai_clients_token ON ai_clients (token_id);

-- OAuth grants: the current refresh token's hash, never its value.
CREATE TABLE oauth_grants (
    id           TEXT COLLATE "C" PRIMARY KEY,
    body         JSON NOT NULL,
    ai_client_id TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'ai_client_id') STORED
        REFERENCES ai_clients (id) DEFERRABLE INITIALLY DEFERRED,
    user_id      TEXT COLLATE "C" NOT NULL GENERATED ALWAYS AS (body ->> 'user_id') STORED
        REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX oauth_grants_client ON oauth_grants (ai_client_id);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);
