ALTER TABLE change_events DROP COLUMN label;
