-- /api.php?method=pets: pets and the items they bring back at pet levels 1, 3 and 6. Item
-- references are plain ids, as in every other source.
CREATE TABLE pets (
    id BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    image TEXT NOT NULL,
    cost BIGINT NOT NULL,
    display_order BIGINT NOT NULL,
    required_farming_level BIGINT NOT NULL,
    required_fishing_level BIGINT NOT NULL,
    required_crafting_level BIGINT NOT NULL,
    required_exploring_level BIGINT NOT NULL,
    required_cooking_level BIGINT NOT NULL
);

CREATE TABLE pet_items (
    pet_id BIGINT NOT NULL REFERENCES pets (id),
    level BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (pet_id, level, item_id)
);
CREATE INDEX pet_items_item ON pet_items (item_id);
