-- Tasks, their trace, and notifications of their progress.
-- Jobs themselves live in procrastinate's tables (migration 0003); a task points at its job.
CREATE TABLE IF NOT EXISTS tasks (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('described', 'direct')),
    description TEXT,
    method VARCHAR(100),
    params JSONB,
    priority SMALLINT NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    timeout DOUBLE PRECISION CHECK (timeout > 0),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    result JSONB,
    error JSONB,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    job_id BIGINT,
    worker TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    CHECK ((kind = 'described') = (description IS NOT NULL)),
    CHECK ((kind = 'direct') = (method IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS tasks_created_idx ON tasks (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS tasks_status_created_idx ON tasks (status, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS task_steps (
    task_id UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')),
    name TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    arguments JSONB,
    result JSONB,
    error JSONB,
    content TEXT,
    thinking TEXT,
    usage JSONB,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE PRECISION,
    PRIMARY KEY (task_id, seq)
);

-- Every status change and every trace step is announced, so a server can wake
-- waiters and stream events whichever worker (on whichever machine) runs the task.
CREATE OR REPLACE FUNCTION qasdk_notify_task_status() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('qasdk_task_events',
        json_build_object('task_id', NEW.id, 'event', 'status', 'status', NEW.status)::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION qasdk_notify_task_step() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('qasdk_task_events',
        json_build_object('task_id', NEW.task_id, 'event', 'step', 'seq', NEW.seq)::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS qasdk_tasks_status_changed ON tasks;
CREATE TRIGGER qasdk_tasks_status_changed
    AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION qasdk_notify_task_status();

DROP TRIGGER IF EXISTS qasdk_task_steps_added ON task_steps;
CREATE TRIGGER qasdk_task_steps_added
    AFTER INSERT ON task_steps
    FOR EACH ROW EXECUTE FUNCTION qasdk_notify_task_step();
