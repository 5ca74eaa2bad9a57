ALTER TABLE runs DROP COLUMN epoch;
DROP INDEX runs_one_per_slot;
ALTER TABLE runs DROP COLUMN slot;
DROP TABLE nodes;
