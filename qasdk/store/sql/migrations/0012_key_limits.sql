-- What a key may run and how much: tools (names) and tags it may run (both NULL: every tool),
-- the permissions its tools may need (NULL: any), submits per window, and tasks unfinished at once.
ALTER TABLE api_keys
    ADD COLUMN IF NOT EXISTS tools        text[],
    ADD COLUMN IF NOT EXISTS tags         text[],
    ADD COLUMN IF NOT EXISTS permissions  text[],
    ADD COLUMN IF NOT EXISTS rate_count   integer CHECK (rate_count > 0),
    ADD COLUMN IF NOT EXISTS rate_seconds integer CHECK (rate_seconds > 0),
    ADD COLUMN IF NOT EXISTS max_running  integer CHECK (max_running > 0);

-- Each rate-limited key's theoretical arrival time (GCRA): one row per key, updated in
-- the submit's transaction, so checking a rate costs the same whatever the traffic.
CREATE TABLE IF NOT EXISTS key_rates (
    key_id  uuid PRIMARY KEY REFERENCES api_keys (id) ON DELETE CASCADE,
    tat     timestamptz NOT NULL
);
