-- What each change-feed entry names (an item's name, a quest's title), written when the change
-- is: a deleted row can no longer be looked up, and `changes --rows` lists rows by name.
ALTER TABLE change_events ADD COLUMN label TEXT;
