-- Completion webhooks (issue 13): the task's callback and its outbox, one row per task.
-- The row is written with the task (status 'waiting'); a trigger makes it due ('pending')
-- in the very transaction that records the task's final state, whichever statement does it
-- (a worker's finish, a cancel, the orphan sweep, a graph's end...), so no ending is missed
-- and a crash after that commit cannot lose the notification. Deliverers take due rows with
-- FOR UPDATE SKIP LOCKED: one attempt at a time per row, whichever process sends it.
CREATE TABLE IF NOT EXISTS task_webhooks (
    task_id UUID PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'pending', 'delivered', 'failed')),
    -- [{at, status_code, error}], oldest first: what the API shows.
    attempts JSONB NOT NULL DEFAULT '[]',
    next_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS task_webhooks_due_idx ON task_webhooks (next_at)
    WHERE status = 'pending';

CREATE OR REPLACE FUNCTION qasdk_webhook_due() RETURNS trigger AS $$
BEGIN
    UPDATE task_webhooks SET status = 'pending', next_at = now()
    WHERE task_id = NEW.id AND status = 'waiting';
    IF FOUND THEN
        PERFORM pg_notify('qasdk_webhooks', NEW.id::text);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS qasdk_tasks_webhook_due ON tasks;
CREATE TRIGGER qasdk_tasks_webhook_due
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status IN ('completed', 'failed', 'cancelled')
                       AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION qasdk_webhook_due();
