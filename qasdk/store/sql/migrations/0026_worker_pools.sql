-- Worker pools and registered workers (issue 17).
-- A task remembers its pool: every job queued for it later (a graph's sub-task, a resume
-- after approval) goes to that pool's queue. Rows from before are the default pool's.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS pool TEXT NOT NULL DEFAULT 'default';

-- Each worker process, as it registers itself at start and on every heartbeat: what
-- GET /api/workers and `qasdk workers` show. Procrastinate's own table has only an id
-- and a heartbeat. Presumed dead when last_heartbeat is older than worker.stalled_after;
-- rows silent for worker.forget_after are deleted by the live workers' heartbeats.
CREATE TABLE IF NOT EXISTS qasdk_workers (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pools TEXT[] NOT NULL,
    version TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at TIMESTAMPTZ,
    running INTEGER NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS qasdk_workers_heartbeat_idx ON qasdk_workers (last_heartbeat);
