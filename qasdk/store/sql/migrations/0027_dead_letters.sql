-- Retries and dead letters (issue 13): a task whose retryable failures used up
-- worker.max_attempts is 'blocked' (it waits for an operator's retry or discard); a
-- retryable failure before that queues the task again at next_attempt_at. Each failed
-- attempt is kept in attempt_history; failures counts those since the last /retry.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_status_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (
    status IN ('pending', 'running', 'awaiting_approval', 'blocked', 'completed', 'failed',
               'cancelled'));
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS attempt_history JSONB NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMPTZ;
-- The dead-letter set an operator works through.
CREATE INDEX IF NOT EXISTS tasks_blocked_idx ON tasks (created_at DESC, id DESC)
    WHERE status = 'blocked';
