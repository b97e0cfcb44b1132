-- How the worker's pipeline treats a tool's calls: {"cache_ttl": 3600, "retries": 3,
-- "retry_on": ["ConnectionError"]}; NULL when the tool asks for nothing. One JSONB value,
-- so policies added later need no migration. Covered by the row's signature.
ALTER TABLE registered_methods ADD COLUMN IF NOT EXISTS policy JSONB;
