-- Every statement qasdk runs. Sections start with "-- name: <query>".

-- name: migrations_table_exists
SELECT to_regclass('qasdk_migrations') IS NOT NULL AS present;

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS qasdk_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- name: lock_migrations
-- Serialises concurrent starts (sync, serve, workers) on one database.
SELECT pg_advisory_xact_lock(7105943210001);

-- name: applied_migrations
SELECT version, name, checksum FROM qasdk_migrations ORDER BY version;

-- name: record_migration
INSERT INTO qasdk_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: lock_registry
-- One sync at a time: the plan is computed and applied under this lock.
SELECT pg_advisory_xact_lock(7105943210002);

-- name: list_methods
SELECT id, name, description, parameters_json AS parameters, return_type,
       module_path, function_name, timeout, tags, permissions, policy, type, endpoint,
       created_at, updated_at, signature
FROM registered_methods
ORDER BY name;

-- name: get_method
SELECT id, name, description, parameters_json AS parameters, return_type,
       module_path, function_name, timeout, tags, permissions, policy, type, endpoint,
       created_at, updated_at
FROM registered_methods
WHERE name = %(name)s;

-- name: upsert_methods
-- Inserts new tools and updates changed ones; an identical row is not touched,
-- so its updated_at stays. Returns only the rows written.
INSERT INTO registered_methods AS m
    (name, description, parameters_json, return_type, module_path, function_name, timeout, tags,
     permissions, policy, type, endpoint)
SELECT x.name, x.description, x.parameters_json, x.return_type, x.module_path,
       x.function_name, x.timeout, COALESCE(x.tags, '[]'::jsonb),
       COALESCE(x.permissions, '{}'::text[]), x.policy, COALESCE(x.type, 'python'), x.endpoint
FROM jsonb_to_recordset(%(methods)s::jsonb) AS x(
    name VARCHAR, description TEXT, parameters_json JSONB, return_type VARCHAR,
    module_path VARCHAR, function_name VARCHAR, timeout DOUBLE PRECISION, tags JSONB,
    permissions TEXT[], policy JSONB, type VARCHAR, endpoint JSONB)
ON CONFLICT (name) DO UPDATE SET
    description = EXCLUDED.description,
    parameters_json = EXCLUDED.parameters_json,
    return_type = EXCLUDED.return_type,
    module_path = EXCLUDED.module_path,
    function_name = EXCLUDED.function_name,
    timeout = EXCLUDED.timeout,
    tags = EXCLUDED.tags,
    permissions = EXCLUDED.permissions,
    policy = EXCLUDED.policy,
    type = EXCLUDED.type,
    endpoint = EXCLUDED.endpoint
WHERE (m.description, m.parameters_json, m.return_type, m.module_path,
       m.function_name, m.timeout, m.tags, m.permissions, m.policy, m.type, m.endpoint)
    IS DISTINCT FROM
      (EXCLUDED.description, EXCLUDED.parameters_json, EXCLUDED.return_type,
       EXCLUDED.module_path, EXCLUDED.function_name, EXCLUDED.timeout, EXCLUDED.tags,
       EXCLUDED.permissions, EXCLUDED.policy, EXCLUDED.type, EXCLUDED.endpoint)
RETURNING m.name, (m.xmax = 0) AS inserted;

-- name: sign_methods
-- Store the signatures qasdk computed for these rows (the key never reaches the database).
UPDATE registered_methods AS m SET signature = x.signature
FROM jsonb_to_recordset(%(signatures)s::jsonb) AS x(name VARCHAR, signature TEXT)
WHERE m.name = x.name AND m.signature IS DISTINCT FROM x.signature
RETURNING m.name;

-- name: delete_methods
DELETE FROM registered_methods WHERE name = ANY(%(names)s) RETURNING name;

-- name: insert_task
-- The task, its queue job and (given an actor) its audit row are created by one
-- statement: an accepted task always has a job and is always audited, a job never
-- points at a missing task, and a submit costs one round trip.
WITH job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, %(priority)s, NULL, NULL,
        jsonb_build_object('task_id', %(id)s::text), NULL
    )::procrastinate_job_to_defer_v1]))[1] AS id
), task AS (
    INSERT INTO tasks (id, kind, description, method, params, priority, timeout, job_id, owner,
                       trace_context, pool, split, failure_policy)
    SELECT %(id)s, %(kind)s, %(description)s, %(method)s, %(params)s::jsonb, %(priority)s,
           %(timeout)s, job.id, %(owner)s, %(trace_context)s::jsonb, %(pool)s, %(split)s,
           %(failure_policy)s
    FROM job
    RETURNING id AS task_id, status, kind, description AS task_description, method, params,
              priority, timeout, result, error, attempts, created_at, started_at,
              completed_at, owner, pool, split, failure_policy
), audited AS (
    INSERT INTO audit_log (actor, key_id, client, action, target, detail, count)
    SELECT %(actor)s, %(key_id)s, %(client)s, %(action)s, task.task_id::text,
           %(detail)s::jsonb, %(count)s
    FROM task
    WHERE %(actor)s::text IS NOT NULL
)
SELECT * FROM task;

-- name: get_task
-- With its completion webhook's row, if it has one (``webhook_*``): reading a task for the
-- API is then one round trip.
SELECT t.id AS task_id, t.status, t.kind, t.description AS task_description, t.method,
       t.params, t.priority, t.timeout, t.result, t.error, t.attempts, t.created_at,
       t.started_at, t.completed_at, t.owner, t.usage, t.parent_id, t.subtask_id,
       NULLIF(t.depends_on, '{}') AS depends_on, t.failure_policy, t.pool, t.failures,
       t.attempt_history, t.next_attempt_at, t.split,
       w.url AS webhook_url, w.status AS webhook_status, w.attempts AS webhook_attempts,
       w.next_at AS webhook_next_at
FROM tasks AS t
LEFT JOIN task_webhooks AS w ON w.task_id = t.id
WHERE t.id = %(id)s;

-- name: list_tasks
-- Newest first, keyset-paginated on (created_at, id), filtered by what is given; params and
-- result (the big columns) only when asked for; attempt_history never (GET one task for it).
SELECT id AS task_id, status, kind, description AS task_description, method,
       CASE WHEN %(with_params)s THEN params END AS params,
       priority, timeout,
       CASE WHEN %(with_result)s THEN result END AS result,
       error, attempts, created_at, started_at, completed_at, owner, usage, parent_id,
       subtask_id, NULLIF(depends_on, '{}') AS depends_on, failure_policy, pool, failures,
       next_attempt_at, split
FROM tasks
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(parent_id)s::uuid IS NULL OR parent_id = %(parent_id)s)
  AND (%(owner)s::uuid IS NULL OR owner = %(owner)s)
  AND (%(method)s::text IS NULL OR method = %(method)s)
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
  AND (%(created_after)s::timestamptz IS NULL OR created_at >= %(created_after)s)
  AND (%(created_before)s::timestamptz IS NULL OR created_at < %(created_before)s)
  AND (%(before_created)s::timestamptz IS NULL
       OR (created_at, id) < (%(before_created)s, %(before_id)s::uuid))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: claim_task
-- A worker takes a task: its session lock first (held while it runs, released by
-- PostgreSQL if the worker's connection dies), then pending (or running after a dead
-- worker) becomes running with a new attempt number. One round trip: ``locked`` is false
-- when another worker holds the task; no task comes back when it is cancelled or finished
-- already. With it, the trace context it was submitted in.
WITH lock AS (
    SELECT pg_try_advisory_lock(%(key)s) AS locked
), claimed AS (
    UPDATE tasks
    SET status = 'running',
        started_at = COALESCE(started_at, now()),
        attempts = attempts + 1,
        worker = %(worker)s
    WHERE id = %(id)s AND status IN ('pending', 'running') AND NOT cancel_requested
          AND (SELECT locked FROM lock)
    RETURNING id AS task_id, status, kind, description AS task_description, method, params,
              priority, timeout, result, error, attempts, created_at, started_at,
              completed_at, owner, parent_id, trace_context, failures, attempt_history,
              next_attempt_at, split, failure_policy,
              (SELECT COALESCE(max(seq), 0) FROM task_steps WHERE task_id = tasks.id)
                  AS last_seq
)
SELECT lock.locked, claimed.* FROM lock LEFT JOIN claimed ON true;

-- name: finish_task
-- Only the attempt that claimed the task may finish it.
-- Its usage is the sum of its model turns' tokens (qasdk_task_usage, migration 0030).
-- With ``job_id``, its queue job ends in the same statement (Procrastinate's own function,
-- as its worker would call it), so the outcome and the job's end are one commit.
WITH finished AS (
    UPDATE tasks
    SET status = %(status)s, result = %(result)s::jsonb, error = %(error)s::jsonb,
        completed_at = now(), usage = qasdk_task_usage(tasks.id)
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
    RETURNING id, parent_id
), job AS (
    SELECT procrastinate_finish_job_v1(j.id, 'succeeded', true)
    FROM finished, procrastinate_jobs AS j
    WHERE j.id = %(job_id)s::bigint AND j.status IN ('todo', 'doing')
)
SELECT id, parent_id, (SELECT count(*) FROM job) AS job_ended FROM finished;

-- name: release_task
-- Hand a running task back to the queue (graceful shutdown): it runs again elsewhere.
UPDATE tasks SET status = 'pending', worker = NULL
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
RETURNING id;

-- name: cancel_task
-- A pending task (or one awaiting approval) is cancelled at once (its job too); a running
-- one is flagged and its worker is asked to abort it. Returns nothing for unknown or finished tasks.
-- A blocked task (a dead letter) is cancelled at once as well.
WITH target AS (
    SELECT id, status, job_id FROM tasks
    WHERE id = %(id)s AND status IN ('pending', 'running', 'awaiting_approval', 'blocked')
    FOR UPDATE
), updated AS (
    UPDATE tasks
    SET cancel_requested = true,
        status = CASE WHEN tasks.status = 'running' THEN tasks.status ELSE 'cancelled' END,
        completed_at = CASE WHEN tasks.status = 'running' THEN tasks.completed_at ELSE now() END,
        error = CASE
            WHEN tasks.status = 'pending'
            THEN '{"type": "Cancelled", "message": "cancelled before it started"}'::jsonb
            WHEN tasks.status = 'awaiting_approval'
            THEN '{"type": "Cancelled", "message": "cancelled while a call awaited approval"}'::jsonb
            WHEN tasks.status = 'blocked'
            THEN '{"type": "Cancelled", "message": "cancelled while blocked"}'::jsonb
            ELSE tasks.error END
    FROM target
    WHERE tasks.id = target.id
    RETURNING tasks.id, tasks.status, tasks.kind, tasks.parent_id, tasks.split
), unasked AS (
    -- A call no one needs to decide any more.
    UPDATE approvals SET status = 'expired', reason = 'the task was cancelled', decided_at = now()
    FROM updated
    WHERE approvals.task_id = updated.id AND approvals.status = 'pending'
)
SELECT updated.id, updated.status, updated.kind, updated.parent_id, updated.split,
       procrastinate_cancel_job_v1(target.job_id, true, false) AS job
FROM updated JOIN target USING (id);

-- name: task_unlock
SELECT pg_advisory_unlock(%(key)s) AS unlocked;

-- name: insert_step
-- A step written again (after an outage, or after a pipeline that failed) is the same step.
INSERT INTO task_steps (task_id, seq, kind, name, attempt, arguments, result, error, content,
                        thinking, usage, started_at, duration_ms, code_version, cached, retries)
VALUES (%(task_id)s, %(seq)s, %(kind)s, %(name)s, %(attempt)s, %(arguments)s::jsonb,
        %(result)s::jsonb, %(error)s::jsonb, %(content)s, %(thinking)s, %(usage)s::jsonb,
        %(started_at)s, %(duration_ms)s, %(code_version)s, %(cached)s, %(retries)s)
ON CONFLICT (task_id, seq) DO NOTHING;

-- name: list_steps
SELECT seq, kind, name, attempt, arguments, result, error, content, thinking, usage,
       started_at, duration_ms, code_version, cached, retries
FROM task_steps
WHERE task_id = %(id)s AND seq > %(after)s
ORDER BY seq;

-- name: cancel_abandoned
-- A task whose cancel was requested while its worker died: finish it as cancelled.
UPDATE tasks
SET status = 'cancelled', completed_at = now(),
    error = '{"type": "Cancelled", "message": "cancelled by request"}'::jsonb
WHERE id = %(id)s AND status IN ('pending', 'running') AND cancel_requested
RETURNING id, parent_id;

-- name: metrics_snapshot
-- What /metrics reads from the database: tasks by status, queued jobs, live workers.
SELECT
    (SELECT COALESCE(json_object_agg(status, n), '{}'::json)
     FROM (SELECT status, count(*) AS n FROM tasks GROUP BY status) AS by_status) AS tasks,
    (SELECT count(*) FROM procrastinate_jobs
     WHERE (queue_name = %(queue)s OR starts_with(queue_name, %(prefix)s))
       AND status = 'todo') AS queued,
    (SELECT count(*) FROM procrastinate_workers
     WHERE last_heartbeat > now() - make_interval(secs => %(stale)s)) AS workers,
    -- By pool: jobs waiting (by queue) and registered workers alive or dead (qasdk_workers).
    (SELECT COALESCE(json_object_agg(queue_name, n), '{}'::json)
     FROM (SELECT queue_name, count(*) AS n FROM procrastinate_jobs
           WHERE (queue_name = %(queue)s OR starts_with(queue_name, %(prefix)s))
             AND status = 'todo'
           GROUP BY queue_name) AS by_queue) AS queued_by_queue,
    (SELECT COALESCE(json_agg(json_build_object('pool', pool, 'alive', alive, 'n', n)), '[]'::json)
     FROM (SELECT pool, alive, count(*) AS n
           FROM (SELECT unnest(pools) AS pool,
                        stopped_at IS NULL
                        AND last_heartbeat > now() - make_interval(secs => %(stale)s) AS alive
                 FROM qasdk_workers) AS served
           GROUP BY pool, alive) AS by_pool) AS pool_workers;

-- name: recover_stalled_jobs
-- Jobs of workers that stopped sending heartbeats go back to the queue, in one
-- statement: rows are locked as they are chosen, and the heartbeat is checked
-- when the statement runs, so two workers never re-queue the same job and a job
-- is never taken from a live worker. A job whose task was being cancelled ends
-- its task as cancelled (Procrastinate marks such a job failed); with its graph, if any.
WITH stalled AS (
    SELECT job.id, job.abort_requested, job.args ->> 'task_id' AS task_id
    FROM procrastinate_jobs AS job
    LEFT JOIN procrastinate_workers AS worker ON worker.id = job.worker_id
    WHERE (job.queue_name = %(queue)s OR starts_with(job.queue_name, %(prefix)s))
      AND job.status = 'doing'
      AND (job.worker_id IS NULL
           OR worker.last_heartbeat < now() - make_interval(secs => %(stale)s))
    FOR UPDATE OF job SKIP LOCKED
), retried AS (
    SELECT stalled.*, procrastinate_retry_job_v2(stalled.id, now(), NULL, NULL, NULL) AS done
    FROM stalled
), cancelled AS (
    UPDATE tasks
    SET status = 'cancelled', completed_at = now(),
        error = '{"type": "Cancelled", "message": "cancelled by request"}'::jsonb
    FROM retried
    WHERE retried.abort_requested
      AND tasks.id = retried.task_id::uuid
      AND tasks.status IN ('pending', 'running')
    RETURNING tasks.id, tasks.parent_id
)
SELECT retried.id AS job_id, retried.task_id, retried.abort_requested,
       (SELECT cancelled.parent_id FROM cancelled
        WHERE cancelled.id = retried.task_id::uuid) AS parent_id
FROM retried;

-- name: ping
-- /health: does the database answer?
SELECT 1 AS ok;

-- name: database_exists
SELECT 1 AS present FROM pg_database WHERE datname = %(name)s;

-- name: create_database
-- {database} is composed as an identifier (psycopg.sql), never from raw text.
CREATE DATABASE {database};

-- name: listen_task_events
-- Status changes and trace steps of every task (triggers of migration 0004).
LISTEN qasdk_task_events;

-- name: listen_registry
-- Changes of registered_methods, whoever made them (trigger of migration 0005).
LISTEN qasdk_registry;

-- name: announce_registry
-- The registry's key changed (qasdk db rotate-signing-key): servers and workers reload it.
SELECT pg_notify('qasdk_registry', '');

-- name: announce_progress
-- A tool's ToolContext.report_progress: not stored, only told to the task's followers.
SELECT pg_notify('qasdk_task_events', %(payload)s);

-- name: settle_orphans
-- Tasks still pending or running whose job has ended (or is gone): nothing will ever
-- record their outcome, so they end as failed instead of staying stuck. ``grace`` keeps
-- clear of a task whose job is being handed between states right now. A graph has no job,
-- nor has a sub-task waiting for its dependencies (see graph_* below).
UPDATE tasks
SET status = 'failed', completed_at = now(),
    error = jsonb_build_object(
        'type', 'InternalError',
        'message', 'the task''s job ended without recording an outcome')
WHERE status IN ('pending', 'running')
  AND created_at < now() - make_interval(secs => %(grace)s)
  AND kind <> 'graph'
  AND split IS DISTINCT FROM 'waiting'
  AND NOT (parent_id IS NOT NULL AND job_id IS NULL AND status = 'pending')
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs AS job
      WHERE job.id = tasks.job_id AND job.status IN ('todo', 'doing'))
RETURNING id, parent_id;

-- name: delete_expired_tasks
-- Finished tasks older than the retention period, a batch at a time; their trace goes
-- with them (ON DELETE CASCADE), and so do the jobs Procrastinate kept for them.
WITH expired AS (
    SELECT id, job_id FROM tasks
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND completed_at < now() - make_interval(secs => %(seconds)s)
    ORDER BY completed_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM tasks USING expired WHERE tasks.id = expired.id
    RETURNING tasks.id, expired.job_id
), jobs AS (
    DELETE FROM procrastinate_jobs
    WHERE id IN (SELECT job_id FROM deleted) AND status NOT IN ('todo', 'doing')
    RETURNING id
)
SELECT (SELECT count(*) FROM deleted) AS tasks, (SELECT count(*) FROM jobs) AS jobs;

-- name: drop_database
-- {database} is composed as an identifier (psycopg.sql); used for scratch databases.
DROP DATABASE IF EXISTS {database} WITH (FORCE);

-- name: insert_key
INSERT INTO api_keys (id, name, digest, scopes, expires_at, tools, tags, permissions,
                      rate_count, rate_seconds, max_running, max_tokens_per_task)
VALUES (%(id)s, %(name)s, %(digest)s, %(scopes)s, %(expires_at)s, %(tools)s, %(tags)s,
        %(permissions)s, %(rate_count)s, %(rate_seconds)s, %(max_running)s, %(max_tokens_per_task)s)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, scopes, created_at, expires_at, revoked_at, tools, tags, permissions,
    rate_count, rate_seconds, max_running, max_tokens_per_task;

-- name: list_keys
SELECT id, name, scopes, created_at, expires_at, revoked_at, tools, tags, permissions,
    rate_count, rate_seconds, max_running, max_tokens_per_task
FROM api_keys
ORDER BY created_at, name;

-- name: key_digest
SELECT id, name, scopes, created_at, expires_at, revoked_at, tools, tags, permissions,
    rate_count, rate_seconds, max_running, max_tokens_per_task, digest
FROM api_keys
WHERE id = %(id)s;

-- name: revoke_key
UPDATE api_keys SET revoked_at = now()
WHERE name = %(name)s AND revoked_at IS NULL
RETURNING id, name, scopes, created_at, expires_at, revoked_at, tools, tags, permissions,
    rate_count, rate_seconds, max_running, max_tokens_per_task;

-- name: lock_owner
-- Submits of one key wait for each other here (on every server), so the count of its
-- open tasks and the insert that follows see each other: a cap cannot be overrun by a race.
SELECT pg_advisory_xact_lock(hashtextextended('qasdk.owner:' || %(owner)s::text, 0));

-- name: take_rate
-- One submit against a key's rate, by the generic cell rate algorithm: each submit moves
-- the key's theoretical arrival time on by window/count; a submit that would move it more
-- than the window ahead is refused (no row returned), and changes nothing.
INSERT INTO key_rates AS r (key_id, tat)
VALUES (%(key)s, now() + make_interval(secs => %(interval)s))
ON CONFLICT (key_id) DO UPDATE
SET tat = greatest(r.tat, now()) + make_interval(secs => %(interval)s)
WHERE greatest(r.tat, now()) - now() <= make_interval(secs => %(tolerance)s)
RETURNING tat;

-- name: rate_wait
-- Seconds until a refused key may submit again.
SELECT greatest(0, extract(epoch FROM tat - now()) - %(tolerance)s)::float8 AS wait
FROM key_rates WHERE key_id = %(key)s;

-- name: open_tasks
-- A key's tasks pending or running, counted up to ``cap`` (all a cap needs to know).
SELECT count(*) AS open FROM (
    SELECT 1 FROM tasks
    WHERE owner = %(owner)s AND status IN ('pending', 'running')
    LIMIT %(cap)s
) AS capped;

-- name: keys_in_force
-- Whether any key can still be used: then every request needs one.
SELECT EXISTS (
    SELECT 1 FROM api_keys
    WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
) AS any;

-- name: insert_audit
-- One row of the audit log (migration 0014: rows are never updated).
INSERT INTO audit_log (actor, key_id, client, action, target, detail, count)
VALUES (%(actor)s, %(key_id)s, %(client)s, %(action)s, %(target)s, %(detail)s::jsonb,
        %(count)s);

-- name: list_audit
-- Newest first, keyset-paginated on (at, id), filtered by what is given; an action
-- matches itself and the actions under it ('task' matches 'task.submit').
SELECT id, at, actor, key_id, client, action, target, detail, count
FROM audit_log
WHERE (%(action)s::text IS NULL OR action = %(action)s
       OR starts_with(action, %(action)s || '.'))
  AND (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(target)s::text IS NULL OR target = %(target)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(before_at)s::timestamptz IS NULL OR (at, id) < (%(before_at)s, %(before_id)s::bigint))
ORDER BY at DESC, id DESC
LIMIT %(limit)s;

-- name: allow_audit_retention
-- Lets this transaction (and only it: is_local) delete audit rows; migration 0014's
-- trigger refuses a DELETE otherwise. Turned off again right after.
SELECT set_config('qasdk.audit_retention', %(allowed)s, true) AS allowed;

-- name: delete_expired_audit
-- Audit rows older than the retention period, a batch at a time.
WITH expired AS (
    SELECT id FROM audit_log
    WHERE at < now() - make_interval(secs => %(seconds)s)
    ORDER BY at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM audit_log USING expired WHERE audit_log.id = expired.id
RETURNING audit_log.id;

-- name: breaker_admit
-- May a call of the tool go on? Returns the breaker as it is. An open breaker past its
-- retry_at (or a half-open one whose probe was lost) lets exactly one caller through
-- as the probe: that caller's row says probing.
WITH probe AS (
    UPDATE tool_breakers
    SET state = 'half_open', retry_at = now() + make_interval(secs => %(probe_timeout)s),
        updated_at = now()
    WHERE tool = %(tool)s AND state IN ('open', 'half_open') AND retry_at <= now()
    RETURNING state, outcomes, retry_at
)
SELECT state, outcomes, retry_at, true AS probing FROM probe
UNION ALL
SELECT state, outcomes, retry_at, false AS probing FROM tool_breakers
WHERE tool = %(tool)s AND NOT EXISTS (SELECT 1 FROM probe);

-- name: breaker_record
-- One call's outcome, kept among the last %(window)s; returns the breaker, locked until commit.
INSERT INTO tool_breakers AS b (tool, outcomes) VALUES (%(tool)s, ARRAY[%(ok)s::boolean])
ON CONFLICT (tool) DO UPDATE
SET outcomes = (b.outcomes || %(ok)s::boolean)[
        greatest(1, cardinality(b.outcomes) + 2 - %(window)s):],
    updated_at = now()
RETURNING state, outcomes, retry_at;

-- name: breaker_set
-- A transition: open (retry after %(cool_down)s s) or closed (its history cleared).
UPDATE tool_breakers
SET state = %(state)s,
    outcomes = CASE WHEN %(state)s = 'closed' THEN '{}'::boolean[] ELSE outcomes END,
    opened_at = CASE WHEN %(state)s = 'open' THEN now() ELSE NULL END,
    retry_at = CASE WHEN %(state)s = 'open' THEN now() + make_interval(secs => %(cool_down)s)
               ELSE NULL END,
    updated_at = now()
WHERE tool = %(tool)s
RETURNING state, outcomes, retry_at;

-- name: get_breaker
SELECT tool, state, outcomes, opened_at, retry_at, updated_at FROM tool_breakers
WHERE tool = %(tool)s;

-- name: cached_result
-- A live result of this tool version for these arguments, counted as a hit.
UPDATE tool_results SET hits = hits + 1
WHERE tool = %(tool)s AND arguments_hash = %(arguments_hash)s AND version = %(version)s
  AND expires_at > now()
RETURNING result;

-- name: store_result
INSERT INTO tool_results (tool, arguments_hash, version, result, expires_at)
VALUES (%(tool)s, %(arguments_hash)s, %(version)s, %(result)s::jsonb,
        now() + make_interval(secs => %(ttl)s))
ON CONFLICT (tool, arguments_hash) DO UPDATE
SET version = EXCLUDED.version, result = EXCLUDED.result, created_at = now(),
    expires_at = EXCLUDED.expires_at, hits = 0;

-- name: delete_expired_results
DELETE FROM tool_results WHERE expires_at <= now();

-- name: take_tool_rate
-- One call against a tool's rate (as take_rate for keys): no row when it must wait.
INSERT INTO tool_rates AS r (tool, tat)
VALUES (%(tool)s, now() + make_interval(secs => %(interval)s))
ON CONFLICT (tool) DO UPDATE
SET tat = greatest(r.tat, now()) + make_interval(secs => %(interval)s)
WHERE greatest(r.tat, now()) - now() <= make_interval(secs => %(tolerance)s)
RETURNING tat;

-- name: tool_rate_wait
SELECT greatest(0, extract(epoch FROM tat - now()) - %(tolerance)s)::float8 AS wait
FROM tool_rates WHERE tool = %(tool)s;

-- name: try_tool_slot
-- One of a tool's max_concurrency slots, held by this session until it ends (or unlocks).
SELECT pg_try_advisory_lock(hashtext('qasdk.tool:' || %(tool)s), %(slot)s) AS taken;

-- name: list_breakers
-- Breakers worth showing: open, half-open, or closed with failures on record.
SELECT tool, state, outcomes, opened_at, retry_at, updated_at FROM tool_breakers
WHERE state <> 'closed' OR false = ANY(outcomes)
ORDER BY (state = 'closed'), tool;

-- name: find_approval
SELECT id, task_id, tool, arguments, status, reason, decided_by, created_at, decided_at,
       expires_at
FROM approvals WHERE task_id = %(task_id)s AND call_key = %(call_key)s;

-- name: request_approval
-- A call waits for a person (once per call of a task: a second request finds the first).
INSERT INTO approvals (id, task_id, call_key, tool, arguments, expires_at)
VALUES (%(id)s, %(task_id)s, %(call_key)s, %(tool)s, %(arguments)s::jsonb,
        now() + make_interval(secs => %(ttl)s))
ON CONFLICT (task_id, call_key) DO UPDATE SET tool = EXCLUDED.tool
RETURNING id, task_id, tool, arguments, status, reason, decided_by, created_at, decided_at,
          expires_at;

-- name: pause_task
-- The attempt stops to wait for a person: where to resume is kept with the approval, and
-- the task leaves the queue's hands (its job ends; no worker holds it).
WITH kept AS (
    UPDATE approvals SET conversation = %(conversation)s::jsonb, pending = %(pending)s::jsonb
    WHERE id = %(approval)s AND task_id = %(id)s
)
UPDATE tasks SET status = 'awaiting_approval', worker = NULL
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
RETURNING id;

-- name: decide_approval
-- A person's decision (or expiry): the task is queued again with a new job, to resume.
WITH decided AS (
    UPDATE approvals
    SET status = %(status)s, reason = %(reason)s, decided_by = %(actor)s, decided_at = now()
    WHERE id = %(approval)s AND task_id = %(id)s AND status = 'pending'
    RETURNING id, task_id, tool, arguments, status, reason, decided_by, created_at,
              decided_at, expires_at
), waiting AS (
    SELECT t.id, t.priority FROM tasks t JOIN decided d ON d.task_id = t.id
    WHERE t.status = 'awaiting_approval' AND NOT t.cancel_requested
    FOR UPDATE OF t
), job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, waiting.priority, NULL, NULL,
        jsonb_build_object('task_id', waiting.id::text), NULL
    )::procrastinate_job_to_defer_v1]))[1] AS id
    FROM waiting
), queued AS (
    UPDATE tasks SET status = 'pending', job_id = job.id FROM job, waiting
    WHERE tasks.id = waiting.id
)
SELECT * FROM decided;

-- name: resume_point
-- Where a model task resumes: the latest decided approval that recorded a conversation.
SELECT id, tool, status, reason, conversation, pending FROM approvals
WHERE task_id = %(id)s AND status <> 'pending' AND conversation IS NOT NULL
ORDER BY decided_at DESC LIMIT 1;

-- name: list_approvals
SELECT a.id, a.task_id, a.tool, a.arguments, a.status, a.reason, a.decided_by, a.created_at,
       a.decided_at, a.expires_at
FROM approvals a JOIN tasks t ON t.id = a.task_id
WHERE (%(status)s::text IS NULL OR a.status = %(status)s)
  AND (%(owner)s::uuid IS NULL OR t.owner = %(owner)s)
  AND (%(task_id)s::uuid IS NULL OR a.task_id = %(task_id)s)
ORDER BY a.created_at DESC
LIMIT %(limit)s;

-- name: expired_approvals
SELECT id, task_id FROM approvals WHERE status = 'pending' AND expires_at <= now()
ORDER BY expires_at LIMIT 100;

-- name: insert_graph
-- A graph's parent task: no job of its own (its sub-tasks have them); running from the start.
-- Audited as insert_task is, by the same statement.
WITH task AS (
    INSERT INTO tasks (id, kind, status, priority, timeout, owner, trace_context,
                       failure_policy, started_at)
    VALUES (%(id)s, 'graph', 'running', %(priority)s, %(timeout)s, %(owner)s,
            %(trace_context)s::jsonb, %(failure_policy)s, now())
    RETURNING id
), audited AS (
    INSERT INTO audit_log (actor, key_id, client, action, target, detail, count)
    SELECT %(actor)s, %(key_id)s, %(client)s, %(action)s, task.id::text,
           %(detail)s::jsonb, %(count)s
    FROM task
    WHERE %(actor)s::text IS NOT NULL
)
SELECT id FROM task;

-- name: insert_subtask
-- A sub-task waits (pending, no job) until graph_advance queues it.
INSERT INTO tasks (id, kind, description, method, params, priority, timeout, owner,
                   trace_context, parent_id, subtask_id, depends_on, unmet, pool)
VALUES (%(id)s, %(kind)s, %(description)s, %(method)s, %(params)s::jsonb, %(priority)s,
        %(timeout)s, %(owner)s, %(trace_context)s::jsonb, %(parent_id)s, %(subtask_id)s,
        %(depends_on)s::uuid[], cardinality(%(depends_on)s::uuid[]), %(pool)s);

-- name: graph_parent_of
-- Before a sub-task's outcome is written, its graph is locked: every change to a graph's
-- tasks takes the parent's lock first, so two siblings finishing at once wait in turn
-- (and never lock each other's rows in opposite orders).
SELECT p.id FROM tasks AS c JOIN tasks AS p ON p.id = c.parent_id
WHERE c.id = %(id)s
FOR UPDATE OF p;

-- name: graph_lock
-- A graph, or a split task while its sub-tasks run (the plan's graph).
SELECT id, status, cancel_requested, failure_policy, split FROM tasks
WHERE id = %(id)s AND (kind = 'graph' OR split = 'waiting')
FOR UPDATE;

-- name: graph_children
-- A graph's sub-tasks without their results (read on each change: kept small).
SELECT id, subtask_id, kind, status, depends_on, unmet, job_id, cancel_requested, params,
       description, priority, error, pool
FROM tasks
WHERE parent_id = %(id)s
ORDER BY created_at, id;

-- name: graph_results
-- The results of these sub-tasks: what a ready one references, or the graph's summary.
SELECT subtask_id, result FROM tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: graph_queue_subtask
-- Its last dependency completed: the sub-task gets its job, with its references resolved,
-- in the transaction that recorded that dependency's outcome.
WITH job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, %(priority)s, NULL, NULL,
        jsonb_build_object('task_id', %(id)s::text), NULL
    )::procrastinate_job_to_defer_v1]))[1] AS id
)
UPDATE tasks
SET job_id = job.id, unmet = 0, params = %(params)s::jsonb,
    description = COALESCE(%(description)s, tasks.description)
FROM job
WHERE tasks.id = %(id)s AND tasks.status = 'pending' AND tasks.job_id IS NULL
RETURNING tasks.id;

-- name: graph_set_unmet
UPDATE tasks SET unmet = %(unmet)s WHERE id = %(id)s AND unmet <> %(unmet)s;

-- name: graph_fail_subtask
-- A waiting sub-task that cannot start (a reference its dependency's result does not have).
UPDATE tasks SET status = 'failed', error = %(error)s::jsonb, completed_at = now(), unmet = 0
WHERE id = %(id)s AND status = 'pending' AND job_id IS NULL
RETURNING id;

-- name: graph_cancel_subtasks
-- As cancel_task, for sub-tasks its graph gives up on: waiting or queued ones end at once,
-- running ones are asked to stop (their worker records the outcome); blocked ones end too.
WITH target AS (
    SELECT id, status, job_id FROM tasks
    WHERE id = ANY(%(ids)s::uuid[])
      AND status IN ('pending', 'running', 'awaiting_approval', 'blocked')
    FOR UPDATE
), updated AS (
    UPDATE tasks
    SET cancel_requested = true,
        status = CASE WHEN tasks.status = 'running' THEN tasks.status ELSE 'cancelled' END,
        completed_at = CASE WHEN tasks.status = 'running' THEN tasks.completed_at ELSE now() END,
        error = CASE WHEN tasks.status = 'running' THEN tasks.error ELSE %(error)s::jsonb END
    FROM target
    WHERE tasks.id = target.id
    RETURNING tasks.id, tasks.status
)
SELECT updated.id, updated.status,
       procrastinate_cancel_job_v1(target.job_id, true, false) AS job
FROM updated JOIN target USING (id);

-- name: graph_finish
-- Every sub-task has ended: the parent ends with their summary.
UPDATE tasks
SET status = %(status)s, result = %(result)s::jsonb, error = %(error)s::jsonb,
    completed_at = now()
WHERE id = %(id)s AND (kind = 'graph' OR split = 'waiting') AND status = 'running'
RETURNING id;

-- Worker pools and registered workers (issue 17, migration 0026) ------------------------

-- name: task_pool
-- The pool a task's next job is queued in (a resume after approval queues one).
SELECT pool FROM tasks WHERE id = %(id)s;

-- name: register_worker
-- A worker process at start (again after a restart of its queue loop: the same id).
INSERT INTO qasdk_workers (id, name, host, pid, pools, version, concurrency)
VALUES (%(id)s, %(name)s, %(host)s, %(pid)s, %(pools)s::text[], %(version)s, %(concurrency)s)
ON CONFLICT (id) DO UPDATE SET last_heartbeat = now(), stopped_at = NULL;

-- name: worker_heartbeat
-- Every heartbeat: this worker's counts, and rows of workers silent for ``forget``
-- seconds are deleted (whichever live worker gets there; a no-op most of the time).
WITH forgotten AS (
    DELETE FROM qasdk_workers
    WHERE last_heartbeat < now() - make_interval(secs => %(forget)s) AND id <> %(id)s
)
UPDATE qasdk_workers
SET last_heartbeat = now(), running = %(running)s, done = %(done)s, stopped_at = NULL
WHERE id = %(id)s
RETURNING id;

-- name: worker_stopped
UPDATE qasdk_workers
SET last_heartbeat = now(), running = %(running)s, done = %(done)s, stopped_at = now()
WHERE id = %(id)s;

-- name: list_workers
-- Registered workers, the live ones first, newest first; alive: a recent heartbeat and no stop.
SELECT id, name, host, pid, pools, version, concurrency, started_at, last_heartbeat,
       stopped_at, running, done,
       stopped_at IS NULL
       AND last_heartbeat > now() - make_interval(secs => %(stale)s) AS alive
FROM qasdk_workers
ORDER BY alive DESC, started_at DESC, id
LIMIT %(limit)s;

-- name: pool_served
-- Whether a live worker serves this pool (a pending task of a pool nobody serves waits).
SELECT EXISTS (
    SELECT 1 FROM qasdk_workers
    WHERE %(pool)s = ANY(pools) AND stopped_at IS NULL
      AND last_heartbeat > now() - make_interval(secs => %(stale)s)
) AS served;

-- Retries and dead letters (issue 13; migration 0027) ---------------------------------

-- name: fail_attempt
-- A retryable failure of the claiming attempt (only it: status and attempts match). Kept in
-- attempt_history; then the task waits (pending) for a new job scheduled at retry_at, or,
-- with %(block)s (its attempts used up), becomes blocked: a dead letter, with no job.
-- Not for a task whose cancel was asked for: that attempt's failure is its outcome.
WITH target AS (
    SELECT id, priority FROM tasks
    WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
      AND NOT cancel_requested
    FOR UPDATE
), due AS (
    SELECT CASE WHEN %(block)s THEN NULL
                ELSE now() + make_interval(secs => %(delay)s) END AS at
), job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, target.priority, NULL, NULL,
        jsonb_build_object('task_id', target.id::text), due.at
    )::procrastinate_job_to_defer_v1]))[1] AS id
    FROM target, due
    WHERE NOT %(block)s
)
UPDATE tasks
SET status = CASE WHEN %(block)s THEN 'blocked' ELSE 'pending' END,
    worker = NULL,
    error = %(error)s::jsonb,
    failures = tasks.failures + 1,
    next_attempt_at = due.at,
    job_id = COALESCE((SELECT id FROM job), tasks.job_id),
    -- The latest %(keep)s attempts are kept: /retry may go round many times.
    attempt_history = (
        SELECT COALESCE(jsonb_agg(entry ORDER BY n), '[]'::jsonb) FROM (
            SELECT entry, n FROM jsonb_array_elements(
                tasks.attempt_history || jsonb_build_array(jsonb_build_object(
                    'attempt', %(attempt)s, 'at', now(), 'error', %(error)s::jsonb,
                    'retry_at', due.at)))
                WITH ORDINALITY AS e(entry, n)
            ORDER BY n DESC LIMIT %(keep)s) AS kept),
    usage = qasdk_task_usage(tasks.id)
FROM target, due
WHERE tasks.id = target.id
RETURNING tasks.id, tasks.status, tasks.next_attempt_at;

-- name: retry_blocked
-- An operator queues a blocked task again (a new job, due now), its failures counted
-- afresh; given, new params or description replace the old ones.
WITH target AS (
    SELECT id, priority FROM tasks WHERE id = %(id)s AND status = 'blocked' FOR UPDATE
), job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, target.priority, NULL, NULL,
        jsonb_build_object('task_id', target.id::text), NULL
    )::procrastinate_job_to_defer_v1]))[1] AS id
    FROM target
)
UPDATE tasks
SET status = 'pending', job_id = job.id, failures = 0, next_attempt_at = NULL,
    params = CASE WHEN %(set_params)s THEN %(params)s::jsonb ELSE tasks.params END,
    description = COALESCE(%(description)s::text, tasks.description)
FROM target, job
WHERE tasks.id = target.id
RETURNING tasks.id, tasks.parent_id;

-- name: discard_blocked
-- An operator gives up on a blocked task: it ends as failed (error kind Discarded), its
-- last error kept in the message.
UPDATE tasks
SET status = 'failed', completed_at = now(), next_attempt_at = NULL,
    error = jsonb_build_object(
        'type', 'Discarded',
        'message', %(message)s::text || COALESCE(
            ' (last error: ' || (error->>'type') || ': ' || (error->>'message') || ')', ''))
WHERE id = %(id)s AND status = 'blocked'
RETURNING id, parent_id;

-- ---------------------------------------------------------------------------------------
-- Completion webhooks (issue 13, migration 0028): task_webhooks is the callback and outbox.

-- name: webhook_subscribe
-- Written in the submit's transaction; due at once should the task have ended already.
INSERT INTO task_webhooks (task_id, url, status, next_at)
SELECT id, %(url)s,
       CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN 'pending' ELSE 'waiting' END,
       CASE WHEN status IN ('completed', 'failed', 'cancelled') THEN now() END
FROM tasks WHERE id = %(task_id)s
RETURNING task_id;

-- name: webhook_claim
-- The most overdue delivery nobody is sending, locked for this attempt (held until commit),
-- with the task's summary.
SELECT w.task_id, w.url, jsonb_array_length(w.attempts) AS attempts,
       t.status, t.kind, t.result, t.error, t.created_at, t.completed_at, t.parent_id,
       t.subtask_id
FROM task_webhooks w JOIN tasks t ON t.id = w.task_id
WHERE w.status = 'pending' AND w.next_at <= now()
ORDER BY w.next_at
LIMIT 1
FOR UPDATE OF w SKIP LOCKED;

-- name: webhook_record
-- One attempt's outcome: delivered, failed for good, or pending again at next_at.
UPDATE task_webhooks
SET attempts = attempts || jsonb_build_array(%(attempt)s::jsonb),
    status = %(status)s,
    next_at = CASE WHEN %(status)s = 'pending'
                   THEN now() + make_interval(secs => %(delay)s) END,
    finished_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END
WHERE task_id = %(task_id)s
RETURNING task_id;

-- name: webhook_next_due
-- Seconds until the next delivery is due (NULL: none pending), for the deliverer's sleep.
SELECT EXTRACT(EPOCH FROM min(next_at) - now())::float8 AS seconds
FROM task_webhooks WHERE status = 'pending';

-- name: listen_webhooks
-- A delivery became due (the trigger of migration 0028).
LISTEN qasdk_webhooks;

-- Graphs the model plans (issue 13): a split task's phases (see migration 0029).

-- name: split_park
-- The plan is valid: the task waits for its sub-tasks (no job; its attempt's job ends),
-- keeping the conversation composing goes on from. Only the claiming attempt may.
UPDATE tasks SET split = 'waiting', plan_conversation = %(conversation)s::jsonb
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND split = 'planning'
RETURNING id;

-- name: split_compose
-- Its sub-tasks have ended: the task is queued again, for the model to answer from them,
-- in the transaction that recorded the last sub-task's outcome.
WITH job AS (
    SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
        %(queue)s, %(job_task)s, priority, NULL, NULL,
        jsonb_build_object('task_id', %(id)s::text), NULL
    )::procrastinate_job_to_defer_v1]))[1] AS id
    FROM tasks WHERE id = %(id)s AND split = 'waiting' AND status = 'running'
)
UPDATE tasks SET split = 'composing', status = 'pending', job_id = job.id, worker = NULL
FROM job
WHERE tasks.id = %(id)s
RETURNING tasks.id;

-- name: split_conversation
SELECT plan_conversation FROM tasks WHERE id = %(id)s;
