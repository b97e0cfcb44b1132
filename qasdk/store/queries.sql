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

-- name: registry_table_exists
SELECT to_regclass('registered_methods') IS NOT NULL AS present;

-- name: list_methods
SELECT id, name, description, parameters_json AS parameters, return_type,
       module_path, function_name, timeout, tags, created_at, updated_at
FROM registered_methods
ORDER BY name;

-- name: get_method
SELECT id, name, description, parameters_json AS parameters, return_type,
       module_path, function_name, timeout, tags, created_at, updated_at
FROM registered_methods
WHERE name = %(name)s;

-- name: upsert_methods
-- Inserts new tools and updates changed ones; an identical row is not touched,
-- so its updated_at stays. Returns only the rows written.
INSERT INTO registered_methods AS m
    (name, description, parameters_json, return_type, module_path, function_name, timeout, tags)
SELECT x.name, x.description, x.parameters_json, x.return_type, x.module_path,
       x.function_name, x.timeout, COALESCE(x.tags, '[]'::jsonb)
FROM jsonb_to_recordset(%(methods)s::jsonb) AS x(
    name VARCHAR, description TEXT, parameters_json JSONB, return_type VARCHAR,
    module_path VARCHAR, function_name VARCHAR, timeout DOUBLE PRECISION, tags JSONB)
ON CONFLICT (name) DO UPDATE SET
    description = EXCLUDED.description,
    parameters_json = EXCLUDED.parameters_json,
    return_type = EXCLUDED.return_type,
    module_path = EXCLUDED.module_path,
    function_name = EXCLUDED.function_name,
    timeout = EXCLUDED.timeout,
    tags = EXCLUDED.tags
WHERE (m.description, m.parameters_json, m.return_type, m.module_path,
       m.function_name, m.timeout, m.tags)
    IS DISTINCT FROM
      (EXCLUDED.description, EXCLUDED.parameters_json, EXCLUDED.return_type,
       EXCLUDED.module_path, EXCLUDED.function_name, EXCLUDED.timeout, EXCLUDED.tags)
RETURNING m.name, (m.xmax = 0) AS inserted;

-- name: delete_methods
DELETE FROM registered_methods WHERE name = ANY(%(names)s) RETURNING name;
