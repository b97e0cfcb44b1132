-- Every stored parameter names whether it is required (seed 000's MethodParameter in full):
-- rows synced before only said so when it was false.
UPDATE registered_methods
SET parameters_json = (
    SELECT COALESCE(jsonb_agg(
        CASE WHEN p ? 'required' THEN p ELSE p || '{"required": true}'::jsonb END
        ORDER BY ordinality), '[]'::jsonb)
    FROM jsonb_array_elements(parameters_json) WITH ORDINALITY AS e(p, ordinality)
)
WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(parameters_json) AS p WHERE NOT p ? 'required');
