-- Rows of the built-in demo pipeline, which needs no upstream at all.
CREATE TABLE demo_records (
    id BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    value BIGINT NOT NULL
);
