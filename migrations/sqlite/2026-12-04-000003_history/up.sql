-- History the original system loaded once from its own database dumps, brought in by
-- `hayloft import`: no live source serves these. Item references are plain ids, as in every
-- other source, so an id the stored item list does not have yet resolves once it has.

-- What a skill level gives (`items.skilllevelreward`), in the order the game lists it: items,
-- and Silver or Gold (kind `silver`, `gold`: no item).
CREATE TABLE skill_level_rewards (
    skill TEXT NOT NULL,
    level BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('item', 'silver', 'gold')),
    item_id BIGINT,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (skill, level, slot)
);
CREATE INDEX skill_level_rewards_item ON skill_level_rewards (item_id);

-- How an item is produced other than by crafting (`items.manualproduction`): the two lines the
-- item page shows (`Sawmill` / `Building`), its image, the rate (`Hourly`) and the sort order.
CREATE TABLE manual_productions (
    id BIGINT PRIMARY KEY NOT NULL,
    item_id BIGINT NOT NULL,
    line_one TEXT NOT NULL,
    line_two TEXT NOT NULL,
    image TEXT NOT NULL,
    rate TEXT NOT NULL,
    sort BIGINT NOT NULL
);
CREATE INDEX manual_productions_item ON manual_productions (item_id);

-- The clues and event of a password (the original system's password list): the password log
-- page shows neither.
CREATE TABLE password_clues (
    password TEXT PRIMARY KEY NOT NULL REFERENCES passwords (password),
    event TEXT NOT NULL,
    clue1 TEXT NOT NULL,
    clue2 TEXT NOT NULL,
    clue3 TEXT NOT NULL
);
