DROP TABLE demo_records;
