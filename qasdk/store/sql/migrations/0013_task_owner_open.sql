-- A key's unfinished tasks, counted at each submit when the key has a cap on them.
CREATE INDEX IF NOT EXISTS tasks_owner_open_idx ON tasks (owner)
    WHERE owner IS NOT NULL AND status IN ('pending', 'running');
