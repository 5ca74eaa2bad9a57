DROP INDEX fan_out_tasks_open;
