-- Whether an item can be sold now is its own field: its upstream sell price is kept even when it
-- cannot be sold (a NULL price used to stand for "cannot be sold", losing the value). Rows
-- stored before this take the flag from the old convention until the next load rewrites them.
ALTER TABLE items ADD COLUMN can_sell BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE items SET can_sell = (sell_price IS NOT NULL);
