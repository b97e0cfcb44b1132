-- The tool registry, exactly as designed in seed 000.
CREATE TABLE IF NOT EXISTS registered_methods (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) UNIQUE NOT NULL,
    description TEXT NOT NULL,
    parameters_json JSONB NOT NULL,
    return_type VARCHAR(50) NOT NULL,
    module_path VARCHAR(255) NOT NULL,
    function_name VARCHAR(100) NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX IF NOT EXISTS idx_method_name ON registered_methods(name);
CREATE INDEX IF NOT EXISTS idx_updated_at ON registered_methods(updated_at);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ language 'plpgsql';

-- A table left by an earlier tool may already have the trigger.
DROP TRIGGER IF EXISTS update_registered_methods_updated_at ON registered_methods;
CREATE TRIGGER update_registered_methods_updated_at
    BEFORE UPDATE ON registered_methods
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at_column();
