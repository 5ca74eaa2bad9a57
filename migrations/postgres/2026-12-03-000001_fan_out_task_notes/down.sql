ALTER TABLE fan_out_tasks DROP COLUMN notes;
