-- The run report: notes that did not fail a run (skipped rows, dangling references), one per line.
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';

-- The last upstream body each source loaded, so an unchanged body skips transform and load.
CREATE TABLE source_fingerprints (
    source TEXT PRIMARY KEY NOT NULL,
    fingerprint TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);

-- Farm RPG items (/api.php?method=items). Prices and levels are NULL when the flag that gives
-- them meaning is off upstream (the API leaves stale numbers there); 0 references are NULL.
CREATE TABLE items (
    id BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    item_type TEXT NOT NULL,
    rarity TEXT,
    description TEXT NOT NULL,
    description_ext TEXT,
    image TEXT NOT NULL,
    farm_image TEXT,
    xp_value BIGINT NOT NULL,
    buy_price BIGINT,
    sell_price BIGINT,
    craft_price BIGINT,
    crafting_level BIGINT,
    flea_market_price BIGINT,
    flea_market_rotates BOOLEAN NOT NULL,
    tent_price BIGINT,
    tent_rotates BOOLEAN NOT NULL,
    tent_max BIGINT,
    black_market_price BIGINT,
    soap_price BIGINT,
    soap_rotates BOOLEAN NOT NULL,
    event_price BIGINT,
    yield_minutes BIGINT,
    yield_quantity BIGINT NOT NULL,
    farming_level BIGINT NOT NULL,
    can_cook BOOLEAN NOT NULL,
    cooking_level BIGINT,
    cooking_recipe_id BIGINT REFERENCES items (id),
    drop_weight BIGINT NOT NULL,
    runecube_weight BIGINT NOT NULL,
    manual_fishing_only BOOLEAN NOT NULL,
    charter_drop BOOLEAN NOT NULL,
    openable BOOLEAN NOT NULL,
    random_contents BOOLEAN NOT NULL,
    loot_key_id BIGINT REFERENCES items (id),
    loot_gold BIGINT,
    loot_shown BOOLEAN NOT NULL,
    void_bag BOOLEAN NOT NULL,
    void_bag_excluded BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    event_item BOOLEAN NOT NULL,
    givable BOOLEAN NOT NULL,
    mastery BOOLEAN NOT NULL,
    start_locked BOOLEAN NOT NULL,
    find_alert BOOLEAN NOT NULL,
    min_trade_level BIGINT NOT NULL,
    min_send_level BIGINT NOT NULL,
    min_receive_level BIGINT NOT NULL,
    phr_excluded BOOLEAN NOT NULL,
    phr_limit BIGINT NOT NULL,
    effect_minutes BIGINT,
    effect_count BIGINT,
    effect_type TEXT,
    effect_amount BIGINT,
    date_added TEXT,
    mastery_count_1 BIGINT NOT NULL,
    mastery_count_2 BIGINT NOT NULL,
    mastery_count_3 BIGINT NOT NULL
);

CREATE INDEX items_by_name ON items (name);

-- What an item is crafted or cooked from.
CREATE TABLE recipe_ingredients (
    item_id BIGINT NOT NULL REFERENCES items (id),
    ingredient_id BIGINT NOT NULL REFERENCES items (id),
    quantity BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('crafting', 'cooking')),
    PRIMARY KEY (item_id, ingredient_id)
);

CREATE INDEX recipe_ingredients_by_ingredient ON recipe_ingredients (ingredient_id);

-- What an openable item holds; random grab bags give a quantity range.
CREATE TABLE locksmith_contents (
    container_id BIGINT NOT NULL REFERENCES items (id),
    item_id BIGINT NOT NULL REFERENCES items (id),
    quantity_min BIGINT NOT NULL,
    quantity_max BIGINT NOT NULL,
    PRIMARY KEY (container_id, item_id)
);

CREATE INDEX locksmith_contents_by_item ON locksmith_contents (item_id);

-- Seeds and the crops they can yield.
CREATE TABLE seed_crops (
    seed_id BIGINT NOT NULL REFERENCES items (id),
    crop_id BIGINT NOT NULL REFERENCES items (id),
    PRIMARY KEY (seed_id, crop_id)
);

-- What the Wishing Well gives for an item thrown in.
CREATE TABLE wishing_well_outputs (
    item_id BIGINT NOT NULL REFERENCES items (id),
    output_id BIGINT NOT NULL REFERENCES items (id),
    PRIMARY KEY (item_id, output_id)
);

CREATE INDEX wishing_well_outputs_by_output ON wishing_well_outputs (output_id);
