//! The tables only `hayloft import` writes: history the original system loaded once from its
//! own database dumps and no live source serves (skill-level rewards, manual productions,
//! password clues). Every other imported model lands in the table its live source loads.

use diesel::{Insertable, Queryable, Selectable};
use serde::Serialize;

use crate::front_doors::graphql::entity::{entity, links};
use crate::pipelines::items::rows::Item;
use crate::pipelines::passwords::Password;
use crate::pipelines::shared::table::stored_table;

entity! {
    #[diesel(table_name = skill_level_rewards)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct SkillLevelReward {
        /// `farming`, `fishing`, `crafting`, `exploring` or `cooking`.
        pub skill: String,
        pub level: i64,
        /// Its place among the level's rewards, as the game orders them.
        pub slot: i64,
        /// `item`, `silver` or `gold`.
        pub kind: String,
        /// The item, for item rewards (Silver and Gold have none).
        pub item_id: Option<i64>,
        pub quantity: i64,
    }
    key (skill, level, slot);
    roots (skill_level_rewards, skill_level_reward);
    relations {
        item: one items.id = item_id;
    }
}
stored_table!(
    SkillLevelReward,
    skill_level_rewards,
    "skill_level_reward",
    key(skill, level, slot),
    update(kind, item_id, quantity)
);

entity! {
    #[diesel(table_name = manual_productions)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct ManualProduction {
        pub id: i64,
        /// The item produced.
        pub item_id: i64,
        /// The first line the item page shows (`Sawmill`).
        pub line_one: String,
        /// The second line (`Building`).
        pub line_two: String,
        /// Site-relative (`/img/items/sawmill_sm.png`).
        pub image: String,
        /// How often it produces (`Hourly`).
        pub rate: String,
        /// Its place among the item's productions.
        pub sort: i64,
    }
    key (id);
    roots (manual_productions, manual_production);
    relations {
        item: one items.id = item_id;
    }
}
stored_table!(
    ManualProduction,
    manual_productions,
    "manual_production",
    key(id),
    update(item_id, line_one, line_two, image, rate, sort),
    label line_one
);

entity! {
    #[diesel(table_name = password_clues)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct PasswordClue {
        pub password: String,
        /// The event or list it belongs to (`Winter Event 2022`, `Passwords`).
        pub event: String,
        pub clue1: String,
        pub clue2: String,
        pub clue3: String,
    }
    key (password);
    roots (password_clues, password_clue);
    relations {
        password_entry: one passwords.password = password;
    }
}
stored_table!(PasswordClue, password_clues, "password_clue", key(password), update(event, clue1, clue2, clue3));

links! {
    Item {
        /// Skill levels that give this item.
        skill_level_rewards: many skill_level_rewards.item_id = id;
        /// How this item is produced other than by crafting.
        manual_productions: many manual_productions.item_id = id;
    }
    Password {
        /// The password's three clues and its event.
        clues: one password_clues.password = password;
    }
}
