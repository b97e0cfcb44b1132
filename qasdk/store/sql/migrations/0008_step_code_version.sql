-- Which version of the tool code ran a tool step (the digest of the code snapshot,
-- see qasdk_server/executor/code.py): after a hot reload, the trace says which ran.
ALTER TABLE task_steps ADD COLUMN IF NOT EXISTS code_version text;
