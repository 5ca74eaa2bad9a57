-- /api/quests/: quests and the items each asks for and gives. Item and NPC references are plain
-- ids, as in every other source (see the sources migration). The predecessor is a plain id too:
-- the answer may list a quest before the one it follows, or name one it does not list.
CREATE TABLE quests (
    id BIGINT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    npc_name TEXT NOT NULL,
    npc_id BIGINT,
    image TEXT,
    author TEXT,
    predecessor_id BIGINT,
    main_quest BOOLEAN NOT NULL,
    -- YYYY-MM-DD in game time (US Central); NULL when always available.
    start_date TEXT,
    end_date TEXT,
    text TEXT NOT NULL,
    html TEXT NOT NULL,
    reward_silver BIGINT NOT NULL,
    reward_gold BIGINT NOT NULL,
    required_silver BIGINT NOT NULL,
    required_npc_id BIGINT,
    required_npc_level BIGINT NOT NULL,
    required_farming_level BIGINT NOT NULL,
    required_fishing_level BIGINT NOT NULL,
    required_crafting_level BIGINT NOT NULL,
    required_exploring_level BIGINT NOT NULL,
    required_cooking_level BIGINT NOT NULL,
    required_tower_level BIGINT NOT NULL,
    completed_count BIGINT NOT NULL
);
CREATE INDEX quests_predecessor ON quests (predecessor_id);

CREATE TABLE quest_required_items (
    quest_id BIGINT NOT NULL REFERENCES quests (id),
    slot BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (quest_id, slot)
);
CREATE INDEX quest_required_items_item ON quest_required_items (item_id);

CREATE TABLE quest_reward_items (
    quest_id BIGINT NOT NULL REFERENCES quests (id),
    slot BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (quest_id, slot)
);
CREATE INDEX quest_reward_items_item ON quest_reward_items (item_id);
