-- Task graphs (issue 13): a parent of kind 'graph' and its sub-tasks, each a task of its own.
-- A sub-task names its dependencies (sibling task ids) and counts those not yet completed;
-- it has no queue job until that count reaches zero, so no worker picks it up before.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_check
    CHECK (kind IN ('described', 'direct', 'graph'));
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS parent_id UUID REFERENCES tasks (id) ON DELETE CASCADE;
-- The client's name for the sub-task in its graph ("a"), what references use.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS subtask_id TEXT;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS depends_on UUID[] NOT NULL DEFAULT '{}';
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS unmet INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS failure_policy TEXT
    CHECK (failure_policy IN ('fail_fast', 'continue'));
CREATE INDEX IF NOT EXISTS tasks_parent_idx ON tasks (parent_id, created_at DESC, id DESC)
    WHERE parent_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tasks_subtask_idx ON tasks (parent_id, subtask_id)
    WHERE parent_id IS NOT NULL;
