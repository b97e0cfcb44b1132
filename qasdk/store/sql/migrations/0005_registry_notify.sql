-- Announce every change of the registry, so running servers and workers reload it
-- whoever changed it (qasdk sync, a hot reload, another server).
CREATE OR REPLACE FUNCTION qasdk_notify_registry_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('qasdk_registry', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS qasdk_registry_changed ON registered_methods;
CREATE TRIGGER qasdk_registry_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON registered_methods
    FOR EACH STATEMENT EXECUTE FUNCTION qasdk_notify_registry_changed();
