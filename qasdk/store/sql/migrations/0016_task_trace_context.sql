-- The W3C trace context (traceparent, tracestate) of the request that submitted a task:
-- the worker that runs it, in whatever process, starts the task's span under it.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS trace_context jsonb;
