-- The tokens a task's model turns used, summed from its trace when it finishes:
-- {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500, "turns": 3}.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS usage JSONB;
