-- Retention deletes finished tasks by completion time; the sweeper looks for tasks
-- still pending or running. Both without scanning the whole table.
CREATE INDEX IF NOT EXISTS tasks_completed_idx ON tasks (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
