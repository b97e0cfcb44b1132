-- The circuit breaker of each tool, shared by every worker and server of the database
-- (server/qasdk_server/middleware/breaker.py). No row: closed, with no failures seen.
CREATE TABLE IF NOT EXISTS tool_breakers (
    tool TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    -- The outcomes of the last calls, oldest first (true: it worked).
    outcomes BOOLEAN[] NOT NULL DEFAULT '{}',
    opened_at TIMESTAMPTZ,
    -- Open: when a probe may go. Half-open: when the probe is presumed lost.
    retry_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
