-- What a fan-out page's parser noted (a name it could not resolve, a row it skipped), one note
-- per line: the run's report gathers them at the end, as it does for a run's own pages.
ALTER TABLE fan_out_tasks ADD COLUMN notes TEXT;
