-- The task ledger: pipelines, their runs, what each run changed, and outgoing notifications.
-- Times are UTC. Counters are 64-bit (BIGINT).

CREATE TABLE pipelines (
    name TEXT PRIMARY KEY NOT NULL,
    schedule TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    registered_at TIMESTAMP NOT NULL
);

CREATE TABLE runs (
    id INTEGER PRIMARY KEY NOT NULL,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'abandoned')),
    trigger TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT,
    queued_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    lease_until TIMESTAMP,
    inserted BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    error TEXT
);

-- At most one queued-or-running run per pipeline, whichever process asks: this index is what
-- makes two runs of one pipeline impossible, even from two processes.
CREATE UNIQUE INDEX runs_one_active_per_pipeline ON runs (pipeline) WHERE status IN ('queued', 'running');
CREATE INDEX runs_by_pipeline ON runs (pipeline, id);

CREATE TABLE change_events (
    id INTEGER PRIMARY KEY NOT NULL,
    run_id BIGINT NOT NULL REFERENCES runs (id),
    entity TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    -- Changed field names, comma-separated (updates only).
    fields TEXT NOT NULL DEFAULT '',
    recorded_at TIMESTAMP NOT NULL
);

CREATE INDEX change_events_by_run ON change_events (run_id);
CREATE INDEX change_events_by_entity ON change_events (entity, entity_key);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_id BIGINT REFERENCES runs (id),
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    last_error TEXT
);

CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
