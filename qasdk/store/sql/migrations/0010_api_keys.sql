-- API keys: who may call the task server, with what scopes. The secret itself is never
-- stored: only its SHA-256 (a key is 256 random bits, so a fast hash is enough).
CREATE TABLE IF NOT EXISTS api_keys (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    digest      bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
