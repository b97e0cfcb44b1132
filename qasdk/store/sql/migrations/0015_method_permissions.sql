-- What a tool declares it needs (@tool(permissions=[...]), methods.yaml `permissions:`):
-- sorted names that API keys may be limited by. Covered by the row's signature when not
-- empty, so rows signed before this column existed still verify.
ALTER TABLE registered_methods
    ADD COLUMN IF NOT EXISTS permissions TEXT[] NOT NULL DEFAULT '{}';
