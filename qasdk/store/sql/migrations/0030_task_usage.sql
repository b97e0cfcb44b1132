-- A task's usage: the sum of its model turns' tokens (every attempt's: all were spent), or
-- NULL when no turn reported any. One definition for every statement that ends an attempt
-- (finish_task, fail_attempt).
CREATE OR REPLACE FUNCTION qasdk_task_usage(task UUID) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
               'prompt_tokens', sum((s.usage->>'prompt_tokens')::bigint),
               'completion_tokens', sum((s.usage->>'completion_tokens')::bigint),
               'total_tokens', sum((s.usage->>'total_tokens')::bigint),
               'turns', count(*))
    FROM task_steps s
    WHERE s.task_id = task AND s.kind = 'model' AND s.usage ? 'total_tokens'
    HAVING count(*) > 0
$$;
