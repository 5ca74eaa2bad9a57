-- Several processes (nodes) on one database.
--
-- nodes: one row per node, its heartbeat written with the database's clock. A node is alive
-- while its heartbeat is recent (see [cluster] dead_after) and it has not left; nothing else
-- (no pid, no hostname) decides it.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY NOT NULL,
    -- Shown to operators only: containers share host names and pid 1.
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL,
    left_at TIMESTAMP
);

-- The schedule slot a scheduled or catch-up run stands for (NULL for manual runs and retries):
-- the unique index makes a second run of one slot impossible, on any node, at any time.
ALTER TABLE runs ADD COLUMN slot TIMESTAMP;
CREATE UNIQUE INDEX runs_one_per_slot ON runs (pipeline, slot);

-- Incremented by every claim: the fencing token every write of the run checks.
ALTER TABLE runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
