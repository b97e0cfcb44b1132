-- Graphs the model plans (issue 13): a described task submitted with "split" goes through
-- planning (its model calls the built-in plan tool), waiting (its sub-tasks run, it has no
-- job) and composing (queued again: the model answers from the sub-tasks' results).
-- The conversation of the planning turn is kept so composing never asks the model again
-- for what it already said.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS split TEXT
    CHECK (split IN ('planning', 'waiting', 'composing'));
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS plan_conversation JSONB;
