-- The audit log: who did what, when (syncs, reloads, key changes, task submits and
-- cancels, denied requests). Append-only: an UPDATE is refused here, whoever sends it, and
-- a DELETE only goes through when retention says so in its own transaction
-- (qasdk.audit_retention, set by the delete_expired_audit query and nothing else).
-- A registry-side migration: `qasdk sync` writes to it without the task queue installed.
CREATE TABLE IF NOT EXISTS audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- An API key's name, 'open' (no keys in force), 'anonymous' (no valid key shown), or
    -- '<via>:<os user>@<host>' for what runs on a machine (cli, serve, registry).
    actor       text NOT NULL,
    key_id      uuid,
    client      text,
    action      text NOT NULL,
    target      text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- How many events this row stands for (denials are aggregated, see denials.py).
    count       integer NOT NULL DEFAULT 1 CHECK (count >= 1)
);
-- Pages and retention read by time; "what did this key do" by actor. No index on action:
-- its filter matches a prefix too (task: task.submit), which a btree on (action, at)
-- would not serve, and every submit pays for each index.
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor_idx ON audit_log (actor, at DESC, id DESC);

CREATE OR REPLACE FUNCTION audit_log_append_only()
RETURNS TRIGGER AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('qasdk.audit_retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'rows leave the audit log only by retention (retention.days)';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
