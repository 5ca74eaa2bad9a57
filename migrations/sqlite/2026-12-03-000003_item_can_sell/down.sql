ALTER TABLE items DROP COLUMN can_sell;
