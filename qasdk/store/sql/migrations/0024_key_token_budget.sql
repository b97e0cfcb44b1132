-- A key's token budget per task: its tasks stop with TokenBudgetExceeded past it (or past
-- model.max_tokens_per_task, whichever is lower). NULL: only the model's budget applies.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS max_tokens_per_task INTEGER
    CHECK (max_tokens_per_task IS NULL OR max_tokens_per_task > 0);
