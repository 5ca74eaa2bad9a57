//! The tower (`/api.php?method=tower`): 300 levels, each giving silver, gold and up to three
//! items. `mm_id1..3` (from level 201 on) are item ids whose meaning the game does not document;
//! they are kept as they are.

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::items::rows::Item;
use super::shared::common::{json_answer, read_rows, ItemSlots};
use super::shared::names::Resolver;
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "tower";
const REQUEST: &str = "/api.php?method=tower";

entity! {
    #[diesel(table_name = tower_levels)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct TowerLevel {
        pub level: i64,
        pub silver: Option<i64>,
        pub gold: Option<i64>,
        pub mm_item_1: Option<i64>,
        pub mm_item_2: Option<i64>,
        pub mm_item_3: Option<i64>,
    }
    key (level);
    roots (tower_levels, tower_level);
    relations {
        rewards: many tower_rewards.level = level;
    }
}
stored_table!(
    TowerLevel,
    tower_levels,
    "tower_level",
    key(level),
    update(silver, gold, mm_item_1, mm_item_2, mm_item_3)
);

entity! {
    #[diesel(table_name = tower_rewards)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct TowerReward {
        pub level: i64,
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (level, slot);
    roots (tower_rewards, tower_reward);
    relations {
        tower_level: one tower_levels.level = level;
        item: one items.id = item_id;
    }
}
stored_table!(TowerReward, tower_rewards, "tower_reward", key(level, slot), update(item_id, quantity));

links! {
    Item {
        /// Tower levels that reward this item.
        tower_rewards: many tower_rewards.item_id = id;
    }
}

#[derive(Debug, Deserialize)]
struct RawLevel {
    level: i64,
    #[serde(default)]
    silver: i64,
    #[serde(default)]
    gold: i64,
    #[serde(flatten)]
    slots: ItemSlots,
    #[serde(default)]
    mm_id1: i64,
    #[serde(default)]
    mm_id2: i64,
    #[serde(default)]
    mm_id3: i64,
}

fn non_zero(number: i64) -> Option<i64> {
    (number != 0).then_some(number)
}

#[derive(Default)]
pub struct Tower;

impl Source for Tower {
    const NAME: &'static str = NAME;
    /// Daily, at a hashed time.
    const DEFAULT_SCHEDULE: &'static str = "H H H * * *";
    const TRANSFORM_VERSION: u32 = 1;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::json(sample_answer()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = &input.pages[0];
        #[derive(Deserialize)]
        struct Answer<'a> {
            #[serde(borrow)]
            tower_levels: Vec<&'a RawValue>,
        }
        let answer: Answer<'_> = json_answer(&page.body, &page.url)?;
        if answer.tower_levels.is_empty() {
            return Err(StageError::BadInput(format!("{} returned no tower levels", page.url)));
        }
        let mut resolver = Resolver::new(&input.names);
        let mut notes = Vec::new();
        let mut levels = Vec::new();
        let mut rewards = Vec::new();
        let read = read_rows::<RawLevel>(answer.tower_levels, "tower level", "level");
        notes.extend(read.notes);
        let unreadable = read.unreadable;
        for level in read.rows {
            for (slot, item, quantity) in level.slots.filled() {
                rewards.push(TowerReward { level: level.level, slot, item_id: resolver.item_id(item), quantity });
            }
            levels.push(TowerLevel {
                level: level.level,
                silver: non_zero(level.silver),
                gold: non_zero(level.gold),
                mm_item_1: non_zero(level.mm_id1),
                mm_item_2: non_zero(level.mm_id2),
                mm_item_3: non_zero(level.mm_id3),
            });
        }
        notes.extend(resolver.notes());
        let dropped = unreadable.len();
        notes.extend(unreadable.note("tower level", "tower_levels or tower_rewards"));
        let unreadable = std::sync::Arc::new(unreadable);
        let keep_rewards = unreadable.clone();
        Ok(Dataset::new()
            .table(levels, DeletePolicy::keep_where(move |row: &TowerLevel| unreadable.protects(row.level)))
            .table(rewards, DeletePolicy::keep_where(move |row: &TowerReward| keep_rewards.protects(row.level)))
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The sample tower API answer: 100 levels, every tenth with silver, every 25th with gold.
fn sample_answer() -> String {
    let levels: Vec<_> = (1..=100_i64)
        .map(|level| {
            json!({
                "id": level, "level": level,
                "silver": if level % 10 == 0 { level * 1000 } else { 0 },
                "gold": if level % 25 == 0 { 10 } else { 0 },
                "item1": plain_item(level as usize).0, "item1_amt": level % 5 + 1,
                "item2": plain_item(level as usize + 40).0, "item2_amt": 1,
                "item3": if level % 3 == 0 { plain_item(level as usize + 80).0 } else { 0 }, "item3_amt": 1,
                "mm_id1": 0, "mm_id2": 0, "mm_id3": 0
            })
        })
        .collect();
    json!({ "tower_levels": levels }).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::shared::names::Names;
    use crate::pipelines::shared::source::{parse_pages, Page};

    // Empty slots are no rows; zero silver and gold are NULL; a bad level is skipped alone, and
    // one whose key (`level`) cannot be read protects every stored level.
    #[test]
    fn levels_and_reward_slots() {
        let body = serde_json::json!({"tower_levels": [
            {"id": 1, "level": 1, "silver": 0, "gold": 5, "item1": 10, "item1_amt": 2, "item2": 0, "item2_amt": 0,
             "item3": 11, "item3_amt": 1, "mm_id1": 0, "mm_id2": 0, "mm_id3": 0},
            {"id": 2, "level": 2, "silver": "lots"}
        ]});
        let page = Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: Bytes::from(body.to_string()) };
        let dataset = parse_pages(&Tower, vec![page], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("tower_levels", 1), ("tower_rewards", 2)]);
        assert!(dataset.notes[0].starts_with("tower level 2 skipped"), "{:?}", dataset.notes);

        let body = serde_json::json!({"tower_levels": [
            {"id": 1, "level": 1, "silver": 0, "gold": 5, "item1": 10, "item1_amt": 2, "item2": 0, "item2_amt": 0,
             "item3": 11, "item3_amt": 1, "mm_id1": 0, "mm_id2": 0, "mm_id3": 0},
            {"id": 2, "level": "two"}
        ]});
        let page = Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: Bytes::from(body.to_string()) };
        let dataset = parse_pages(&Tower, vec![page], Names::default()).unwrap();
        assert!(dataset.notes[0].starts_with("tower level without a readable key skipped"), "{:?}", dataset.notes);
        assert!(
            dataset.notes.iter().any(|note| note.starts_with("1 tower level rows without a readable key: no row of")),
            "{:?}",
            dataset.notes
        );
    }
}
