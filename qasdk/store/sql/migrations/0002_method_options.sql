-- What @tool(timeout=..., tags=[...]) adds to the seed's columns.
ALTER TABLE registered_methods
    ADD COLUMN IF NOT EXISTS timeout DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS tags JSONB NOT NULL DEFAULT '[]'::jsonb;
