-- Why a failed run failed, as a kind code can match on (the error text is for people):
-- refused (by the delete guard), failed, timed_out, panicked. NULL for every other status.
ALTER TABLE runs ADD COLUMN failure TEXT
    CHECK (failure IN ('refused', 'failed', 'timed_out', 'panicked'));
