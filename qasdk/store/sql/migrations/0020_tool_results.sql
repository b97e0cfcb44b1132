-- Results of tools that declare cache_ttl, shared by every worker (middleware/cache.py):
-- one per tool and canonical arguments, valid for the tool version that made it.
CREATE TABLE IF NOT EXISTS tool_results (
    tool TEXT NOT NULL,
    -- sha256 of the arguments as canonical JSON (sorted keys).
    arguments_hash TEXT NOT NULL,
    -- sha256 of the tool's registration and its code: a change of either misses.
    version TEXT NOT NULL,
    result JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    hits BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tool, arguments_hash)
);
CREATE INDEX IF NOT EXISTS tool_results_expires_idx ON tool_results (expires_at);

-- A tool step answered from that cache, and the retries a call took.
ALTER TABLE task_steps
    ADD COLUMN IF NOT EXISTS cached BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS retries INTEGER NOT NULL DEFAULT 0;
