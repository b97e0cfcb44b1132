-- Tools that are not Python functions (seed 001's tools.type / endpoint): an 'mcp' tool
-- is a remote tools/call to the MCP server its endpoint names (url or command/args, header
-- and env templates, the remote tool name). module_path and function_name stay empty for
-- them. Covered by the row's signature when not the default, so rows signed before this
-- column existed still verify.
ALTER TABLE registered_methods
    ADD COLUMN IF NOT EXISTS type VARCHAR(20) NOT NULL DEFAULT 'python',
    ADD COLUMN IF NOT EXISTS endpoint JSONB;

ALTER TABLE registered_methods DROP CONSTRAINT IF EXISTS registered_methods_type_check;
ALTER TABLE registered_methods ADD CONSTRAINT registered_methods_type_check
    CHECK (type IN ('python', 'mcp'));
