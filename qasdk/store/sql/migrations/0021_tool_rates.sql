-- The rate of each tool that declares one (@tool(rate="10/s")), shared by every worker:
-- the theoretical arrival time of the generic cell rate algorithm, as for keys (0012).
CREATE TABLE IF NOT EXISTS tool_rates (
    tool TEXT PRIMARY KEY,
    tat TIMESTAMPTZ NOT NULL
);
