-- The open tasks in claim order: a claim walks this index from the lowest id and stops after
-- its batch, however many pages the run has (it sorted every open task before).
CREATE INDEX fan_out_tasks_open ON fan_out_tasks (id) WHERE status IN ('queued', 'claimed');
