DROP TABLE outbox;
DROP TABLE change_events;
DROP TABLE runs;
DROP TABLE pipelines;
