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
    -- The same as instants, RFC 3339 in UTC; ends_at is the first instant after end_date.
    starts_at TEXT,
    ends_at TEXT,
    -- Read from the title (`99 Bottles XLVIII`: line `99 Bottles`, step 48).
    questline TEXT,
    questline_step BIGINT,
    questline_part TEXT,
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
CREATE INDEX quests_questline ON quests (questline);

-- One row per quest line the titles name.
CREATE TABLE questlines (
    name TEXT PRIMARY KEY NOT NULL,
    step_count BIGINT NOT NULL,
    first_quest_id BIGINT NOT NULL
);

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
