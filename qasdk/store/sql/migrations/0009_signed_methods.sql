-- Each row is signed by qasdk sync (HMAC-SHA256 with a key that is never stored here):
-- a row without a valid signature is not loaded by servers and workers.
ALTER TABLE registered_methods ADD COLUMN IF NOT EXISTS signature TEXT;

-- Signing (or re-signing after a key rotation) is not a change of the tool: its
-- updated_at stays.
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    IF to_jsonb(NEW) - 'signature' - 'updated_at'
            IS DISTINCT FROM to_jsonb(OLD) - 'signature' - 'updated_at' THEN
        NEW.updated_at = CURRENT_TIMESTAMP;
    END IF;
    RETURN NEW;
END;
$$ language 'plpgsql';
