DROP TABLE page_fingerprints;
DROP TABLE fan_out_tasks;
