-- The API key that submitted a task (NULL: submitted with no keys in force). Other keys
-- cannot see it; the index serves a key's own task list.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS owner uuid;
CREATE INDEX IF NOT EXISTS tasks_owner_idx ON tasks (owner, created_at DESC, id DESC)
    WHERE owner IS NOT NULL;
