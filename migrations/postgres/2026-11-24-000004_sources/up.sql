-- Every other Farm RPG source. References to items are plain ids without a foreign key: each
-- source loads on its own schedule from captures of different dates, so an id may name an item
-- the item list does not have yet (the run report says which), and the items pipeline must stay
-- free to delete an item without touching other sources' rows. References inside one source
-- are real foreign keys. Names are kept beside resolved ids where the page gives only a name.

-- /api.php?method=npcs
CREATE TABLE npcs (
    id BIGINT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    image TEXT NOT NULL,
    image_halloween TEXT,
    image_christmas TEXT,
    explore_location_id BIGINT,
    friendship BOOLEAN NOT NULL
);

-- relation: gives (in chat), likes, loves, hates, can_be_given.
CREATE TABLE npc_items (
    npc_id BIGINT NOT NULL REFERENCES npcs (id),
    relation TEXT NOT NULL,
    item_id BIGINT NOT NULL,
    PRIMARY KEY (npc_id, relation, item_id)
);
CREATE INDEX npc_items_item ON npc_items (item_id);

-- Friendship rewards; npc_id is NULL when the NPC name did not resolve (npc_name keeps it).
CREATE TABLE npc_rewards (
    id BIGINT PRIMARY KEY NOT NULL,
    npc_id BIGINT REFERENCES npcs (id),
    npc_name TEXT NOT NULL,
    level BIGINT NOT NULL,
    silver BIGINT,
    gold BIGINT
);
CREATE INDEX npc_rewards_npc ON npc_rewards (npc_id);

CREATE TABLE npc_reward_items (
    reward_id BIGINT NOT NULL REFERENCES npc_rewards (id),
    slot BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (reward_id, slot)
);
CREATE INDEX npc_reward_items_item ON npc_reward_items (item_id);

-- /npclevels.php and /manage_npc.php, merged per NPC account (npcs.user_id).
CREATE TABLE npc_profiles (
    user_id BIGINT PRIMARY KEY NOT NULL,
    npc_id BIGINT,
    name TEXT NOT NULL,
    zone TEXT,
    staff_image TEXT,
    friendship_level BIGINT,
    friendship_progress DOUBLE PRECISION,
    townsfolk_of_the_day BOOLEAN NOT NULL,
    staff_stat_1 BIGINT,
    staff_stat_2 BIGINT,
    staff_stat_3 BIGINT,
    staff_stat_4 BIGINT
);

-- /api.php?method=tower
CREATE TABLE tower_levels (
    level BIGINT PRIMARY KEY NOT NULL,
    silver BIGINT,
    gold BIGINT,
    mm_item_1 BIGINT,
    mm_item_2 BIGINT,
    mm_item_3 BIGINT
);

CREATE TABLE tower_rewards (
    level BIGINT NOT NULL REFERENCES tower_levels (level),
    slot BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (level, slot)
);
CREATE INDEX tower_rewards_item ON tower_rewards (item_id);

-- /locations.php and /location.php?type=…&id=…
CREATE TABLE locations (
    location_type TEXT NOT NULL,
    id BIGINT NOT NULL,
    name TEXT NOT NULL,
    subtitle TEXT,
    image TEXT,
    PRIMARY KEY (location_type, id)
);

CREATE TABLE location_drops (
    location_type TEXT NOT NULL,
    location_id BIGINT NOT NULL,
    item_id BIGINT NOT NULL,
    PRIMARY KEY (location_type, location_id, item_id),
    FOREIGN KEY (location_type, location_id) REFERENCES locations (location_type, id)
);
CREATE INDEX location_drops_item ON location_drops (item_id);

-- /comm.php: one goal per game day (YYYY-MM-DD).
CREATE TABLE community_goals (
    goal_date TEXT PRIMARY KEY NOT NULL,
    goal_item_id BIGINT,
    goal_item_name TEXT NOT NULL,
    goal_quantity BIGINT NOT NULL,
    reward_item_id BIGINT,
    reward_item_name TEXT NOT NULL,
    reward_quantity BIGINT NOT NULL,
    progress BIGINT,
    progress_percent DOUBLE PRECISION
);

-- /exchange.php: offers over time; first_seen / last_seen are game days.
CREATE TABLE exchange_offers (
    give_item_id BIGINT NOT NULL,
    give_quantity BIGINT NOT NULL,
    receive_item_id BIGINT NOT NULL,
    receive_quantity BIGINT NOT NULL,
    give_item_name TEXT NOT NULL,
    receive_item_name TEXT NOT NULL,
    one_shot BOOLEAN NOT NULL,
    trade_id BIGINT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (give_item_id, give_quantity, receive_item_id, receive_quantity)
);

-- /manage_hoc.php: House of Cards combinations.
CREATE TABLE card_combos (
    id BIGINT PRIMARY KEY NOT NULL,
    reward_item_id BIGINT,
    reward_item_name TEXT NOT NULL,
    reward_quantity BIGINT NOT NULL,
    times_turned_in BIGINT NOT NULL
);

CREATE TABLE card_combo_cards (
    combo_id BIGINT NOT NULL REFERENCES card_combos (id),
    suit TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (combo_id, suit)
);

-- /tent.php: Borgen's stock per week (the Wednesday it opened, game time); price in Ancient
-- Coins, NULL when the page showed none ("Inv Full").
CREATE TABLE tent_offers (
    week TEXT NOT NULL,
    item_id BIGINT NOT NULL,
    item_name TEXT NOT NULL,
    price BIGINT,
    PRIMARY KEY (week, item_id)
);

-- /about.php and /about.php?all=1
CREATE TABLE game_updates (
    id BIGINT PRIMARY KEY NOT NULL,
    posted_on TEXT NOT NULL,
    text TEXT NOT NULL,
    html TEXT NOT NULL
);

CREATE TABLE game_update_items (
    update_id BIGINT NOT NULL REFERENCES game_updates (id),
    item_id BIGINT NOT NULL,
    PRIMARY KEY (update_id, item_id)
);
CREATE INDEX game_update_items_item ON game_update_items (item_id);

-- /popwlog.php; redeemed_at as the page shows it (it carries no year).
CREATE TABLE passwords (
    password TEXT PRIMARY KEY NOT NULL,
    redeemed_at TEXT
);

-- kind: item, silver or gold (the page lists Silver and Gold like items).
CREATE TABLE password_rewards (
    password TEXT NOT NULL REFERENCES passwords (password),
    slot BIGINT NOT NULL,
    kind TEXT NOT NULL,
    item_id BIGINT,
    item_name TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (password, slot)
);
CREATE INDEX password_rewards_item ON password_rewards (item_id);

-- /gallery.php
CREATE TABLE profile_backgrounds (
    name TEXT PRIMARY KEY NOT NULL,
    background_id BIGINT,
    image TEXT NOT NULL,
    players_unlocked BIGINT,
    cost_kind TEXT,
    cost_item_id BIGINT,
    cost_item_name TEXT,
    cost_quantity BIGINT
);

-- /item.php?id=N: what the item API does not say.
CREATE TABLE item_details (
    item_id BIGINT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    rarity TEXT,
    xp_value BIGINT,
    flea_market_gold BIGINT,
    contents_gold BIGINT
);

-- activity: the page section (fishing, exploring, ...) listing the location.
CREATE TABLE item_sources (
    item_id BIGINT NOT NULL,
    activity TEXT NOT NULL,
    location_type TEXT NOT NULL,
    location_id BIGINT NOT NULL,
    PRIMARY KEY (item_id, activity, location_type, location_id)
);
CREATE INDEX item_sources_location ON item_sources (location_type, location_id);
