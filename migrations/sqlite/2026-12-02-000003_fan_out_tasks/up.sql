-- Fan-out pages as shared work: a fan-out run (item pages, location pages) writes one task row
-- per page; every node takes batches of them, fetches, parses and writes each page on its own,
-- and the run finishes when none is left. A crash loses only the pages a node had in hand.
CREATE TABLE fan_out_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- The run the page belongs to; a retry of an abandoned run takes its tasks over.
    run_id BIGINT NOT NULL REFERENCES runs (id),
    pipeline TEXT NOT NULL,
    request TEXT NOT NULL,
    -- failed: not fetched; unreadable: fetched, but its parser could not read it.
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'claimed', 'done', 'failed', 'unreadable')),
    -- The node holding a claimed task, and until when (by the database's clock).
    owner TEXT,
    lease_until TIMESTAMP,
    -- Incremented by every claim: the fencing token the page's write checks.
    attempt INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    inserted BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX fan_out_tasks_one_per_request ON fan_out_tasks (run_id, request);
CREATE INDEX fan_out_tasks_by_status ON fan_out_tasks (status, run_id);

-- What each fan-out page last loaded was: an unchanged page writes nothing.
CREATE TABLE page_fingerprints (
    pipeline TEXT NOT NULL,
    request TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pipeline, request)
);
