-- Human approval of tool calls (middleware/approval.py): a task whose call waits for a
-- person is awaiting_approval, holding no worker; a decision queues it again, and it
-- resumes from the conversation recorded at the pause (its model turns are not repeated).
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (
    status IN ('pending', 'running', 'awaiting_approval', 'completed', 'failed', 'cancelled'));

CREATE TABLE IF NOT EXISTS approvals (
    id UUID PRIMARY KEY,
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    -- The call: its tool and canonical arguments (the same call in a task is one approval).
    call_key TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments JSONB,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    reason TEXT,
    decided_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ NOT NULL,
    -- Where a model task resumes: its messages, and the calls of that turn still to run.
    conversation JSONB,
    pending JSONB,
    UNIQUE (task_id, call_key)
);
CREATE INDEX IF NOT EXISTS approvals_waiting_idx ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS approvals_task_idx ON approvals (task_id, decided_at DESC);
