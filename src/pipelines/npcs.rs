//! NPCs (`/api.php?method=npcs`): the townsfolk, the items they give in chat, like, love, hate
//! and can be given, and their friendship rewards by level. Rewards name their NPC by name, with
//! aliases ("Charles", "Cpt Thomas"); those resolve against this answer's NPC list.

use diesel::{Insertable, Queryable, Selectable};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::items::rows::Item;
use super::items::transform::flag;
use super::shared::common::{json_answer, read_rows, ItemSlots};
use super::shared::names::{NameIndex, Resolver};
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};
use hayloft_actors::pipeline::StageError;

pub const NAME: &str = "npcs";
const REQUEST: &str = "/api.php?method=npcs";

entity! {
    #[diesel(table_name = npcs)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Npc {
        pub id: i64,
        pub user_id: i64,
        pub name: String,
        pub image: String,
        pub image_halloween: Option<String>,
        pub image_christmas: Option<String>,
        pub explore_location_id: Option<i64>,
        pub friendship: bool,
    }
    key (id);
    roots (npcs, npc);
    relations {
        /// Items this NPC gives, likes, loves, hates or can be given (`relation` narrows it).
        items(relation): many npc_items.npc_id = id;
        /// Friendship rewards by level.
        rewards: many npc_rewards.npc_id = id;
        /// Friendship level and staff details from the NPC pages.
        profile: one npc_profiles.npc_id = id;
        /// The explore location the NPC lives at.
        explore_location: one locations.id = explore_location_id, location_type = "explore";
    }
}
stored_table!(
    Npc,
    npcs,
    "npc",
    key(id),
    update(user_id, name, image, image_halloween, image_christmas, explore_location_id, friendship), label name
);

entity! {
    #[diesel(table_name = npc_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct NpcItem {
        pub npc_id: i64,
        pub relation: String,
        pub item_id: i64,
    }
    key (npc_id, relation, item_id);
    roots (npc_items, npc_item);
    relations {
        npc: one npcs.id = npc_id;
        item: one items.id = item_id;
    }
}
stored_table!(NpcItem, npc_items, "npc_item", key(npc_id, relation, item_id), update());

entity! {
    #[diesel(table_name = npc_rewards)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct NpcReward {
        pub id: i64,
        pub npc_id: Option<i64>,
        pub npc_name: String,
        pub level: i64,
        pub silver: Option<i64>,
        pub gold: Option<i64>,
    }
    key (id);
    roots (npc_rewards, npc_reward);
    relations {
        npc: one npcs.id = npc_id;
        items: many npc_reward_items.reward_id = id;
    }
}
stored_table!(NpcReward, npc_rewards, "npc_reward", key(id), update(npc_id, npc_name, level, silver, gold));

entity! {
    #[diesel(table_name = npc_reward_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct NpcRewardItem {
        pub reward_id: i64,
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (reward_id, slot);
    roots (npc_reward_items, npc_reward_item);
    relations {
        reward: one npc_rewards.id = reward_id;
        item: one items.id = item_id;
    }
}
stored_table!(NpcRewardItem, npc_reward_items, "npc_reward_item", key(reward_id, slot), update(item_id, quantity));

links! {
    Item {
        /// NPCs that give, like, love, hate or can be given this item (`relation` narrows it).
        npc_relations(relation): many npc_items.item_id = id;
        /// NPC friendship rewards that give this item.
        npc_rewards: many npc_reward_items.item_id = id;
    }
}

#[derive(Debug, Deserialize)]
struct RawNpc {
    id: i64,
    user_id: i64,
    name: String,
    #[serde(default)]
    img: String,
    #[serde(default)]
    img_oct: String,
    #[serde(default)]
    img_dec: String,
    #[serde(default)]
    explore_id: i64,
    #[serde(deserialize_with = "flag", default)]
    friendship: bool,
    #[serde(default)]
    items: String,
    #[serde(default)]
    like_items: String,
    #[serde(default)]
    love_items: String,
    #[serde(default)]
    hate_items: String,
    #[serde(default)]
    can_be_given_items: String,
}

#[derive(Debug, Deserialize)]
struct RawReward {
    id: i64,
    npc: String,
    level: i64,
    #[serde(default)]
    silver: i64,
    #[serde(default)]
    gold: i64,
    #[serde(flatten)]
    slots: ItemSlots,
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn non_zero(number: i64) -> Option<i64> {
    (number != 0).then_some(number)
}

/// `"44,84, 185,"` → the ids, skipping empty entries; unreadable entries are returned apart.
pub fn id_list(text: &str) -> (Vec<i64>, Vec<String>) {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty() && *part != "0") {
        match part.parse() {
            Ok(id) => ids.push(id),
            Err(_) => bad.push(part.to_owned()),
        }
    }
    (ids, bad)
}

#[derive(Default)]
pub struct Npcs;

impl Source for Npcs {
    const NAME: &'static str = NAME;
    /// Every 6 hours, at a hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H H/6 * * *";
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
            npcs: Vec<&'a RawValue>,
            #[serde(default, borrow)]
            npc_rewards: Vec<&'a RawValue>,
        }
        let answer: Answer<'_> = json_answer(&page.body, &page.url)?;
        if answer.npcs.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} returned an empty NPC list; refusing to read that as \"every NPC left town\"",
                page.url
            )));
        }
        let mut notes = Vec::new();
        let mut dropped = 0;
        let mut resolver = Resolver::new(&input.names);
        let mut npc_rows = Vec::new();
        let mut item_rows = Vec::new();
        let read = read_rows::<RawNpc>(answer.npcs, "NPC", "id");
        dropped += read.unreadable.len();
        notes.extend(read.notes);
        notes.extend(read.unreadable.note("NPC", "npcs or npc_items"));
        let mut unreadable_npcs = read.unreadable;
        for npc in read.rows {
            let lists = [
                ("gives", &npc.items),
                ("likes", &npc.like_items),
                ("loves", &npc.love_items),
                ("hates", &npc.hate_items),
                ("can_be_given", &npc.can_be_given_items),
            ];
            for (relation, list) in lists {
                let (ids, bad) = id_list(list);
                if !bad.is_empty() {
                    notes.push(format!(
                        "NPC {}: unreadable {relation} entries skipped, its stored items kept: {}",
                        npc.id,
                        bad.join(", ")
                    ));
                    // Those entries could be any item: keep this NPC's stored item rows.
                    unreadable_npcs.add(Some(npc.id));
                    dropped += bad.len() as u64;
                }
                let mut seen = std::collections::BTreeSet::new();
                for id in ids {
                    if seen.insert(id) {
                        item_rows.push(NpcItem {
                            npc_id: npc.id,
                            relation: relation.to_owned(),
                            item_id: resolver.item_id(id),
                        });
                    }
                }
            }
            npc_rows.push(Npc {
                id: npc.id,
                user_id: npc.user_id,
                name: npc.name.trim().to_owned(),
                image: npc.img,
                image_halloween: non_empty(&npc.img_oct),
                image_christmas: non_empty(&npc.img_dec),
                explore_location_id: non_zero(npc.explore_id),
                friendship: npc.friendship,
            });
        }

        let index = NameIndex::new(npc_rows.iter().map(|npc| (npc.name.clone(), npc.id)));
        let mut reward_rows = Vec::new();
        let mut reward_items = Vec::new();
        let read = read_rows::<RawReward>(answer.npc_rewards, "NPC reward", "id");
        dropped += read.unreadable.len();
        notes.extend(read.notes);
        notes.extend(read.unreadable.note("NPC reward", "npc_rewards or npc_reward_items"));
        let unreadable_rewards = std::sync::Arc::new(read.unreadable);
        for reward in read.rows {
            let npc_id = resolver.npc_in(&index, &reward.npc);
            for (slot, item, quantity) in reward.slots.filled() {
                reward_items.push(NpcRewardItem {
                    reward_id: reward.id,
                    slot,
                    item_id: resolver.item_id(item),
                    quantity,
                });
            }
            reward_rows.push(NpcReward {
                id: reward.id,
                npc_id,
                npc_name: reward.npc.trim().to_owned(),
                level: reward.level,
                silver: non_zero(reward.silver),
                gold: non_zero(reward.gold),
            });
        }
        notes.extend(resolver.notes());

        let unreadable = std::sync::Arc::new(unreadable_npcs);
        let keep_npc = unreadable.clone();
        let keep_items = unreadable.clone();
        Ok(Dataset::new()
            .table(npc_rows, DeletePolicy::keep_where(move |row: &Npc| keep_npc.protects(row.id)))
            .table(item_rows, DeletePolicy::keep_where(move |row: &NpcItem| keep_items.protects(row.npc_id)))
            .table(reward_rows, {
                let keep = unreadable_rewards.clone();
                DeletePolicy::keep_where(move |row: &NpcReward| keep.protects(row.id))
            })
            .table(
                reward_items,
                DeletePolicy::keep_where(move |row: &NpcRewardItem| unreadable_rewards.protects(row.reward_id)),
            )
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The NPCs of the generated sample upstream: (id, user id, name). The NPC pages' sample
/// shows them too.
pub const SAMPLE_NPCS: [(i64, i64, &str); 5] = [
    (1, 30001, "Marigold"),
    (2, 30002, "Captain Finch"),
    (3, 30003, "Old Tobias"),
    (4, 30004, "Wren"),
    (5, 30005, "Juniper Vale"),
];

/// The sample NPC API answer: item lists name plain sample items by id, rewards name their NPC
/// (sometimes by a short alias, as the API does).
fn sample_answer() -> String {
    let list =
        |start: usize| (0..4).map(|step| plain_item(start + step * 3).0.to_string()).collect::<Vec<_>>().join(",");
    let npcs: Vec<_> = SAMPLE_NPCS
        .iter()
        .enumerate()
        .map(|(index, (id, user_id, name))| {
            json!({
                "id": id, "user_id": user_id, "name": name, "img": format!("/img/items/npc_{id}.png"),
                "img_oct": "", "img_dec": "", "explore_id": if index < 2 { index as i64 + 1 } else { 0 },
                "friendship": i64::from(index != 4), "items": list(index * 10),
                "like_items": list(index * 10 + 1), "love_items": list(index * 10 + 2),
                "hate_items": list(index * 10 + 50), "can_be_given_items": ""
            })
        })
        .collect();
    let mut rewards = Vec::new();
    for (index, (_, _, name)) in SAMPLE_NPCS.iter().enumerate() {
        // The API names NPCs in rewards, sometimes by a short alias.
        let alias = match *name {
            "Captain Finch" => "Cpt Finch",
            "Juniper Vale" => "Juniper",
            other => other,
        };
        for level in [10, 20, 30] {
            rewards.push(json!({
                "id": rewards.len() + 1, "npc": alias, "level": level, "silver": level * 100, "gold": 0,
                "item1": plain_item(index * 7 + level as usize).0, "item1_amt": level / 10,
                "item2": 0, "item2_amt": 0, "item3": 0, "item3_amt": 0
            }));
        }
    }
    json!({ "npcs": npcs, "npc_rewards": rewards }).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::shared::names::Names;
    use crate::pipelines::shared::source::{parse_pages, Page};

    fn page(body: serde_json::Value) -> Page {
        Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: Bytes::from(body.to_string()) }
    }

    // Lists become one row per relation and item; rewards find their NPC through aliases.
    #[test]
    fn lists_and_reward_aliases() {
        let body = serde_json::json!({
            "npcs": [{"id": 5, "user_id": 22441, "name": "Captain Thomas", "img": "/a.png", "img_oct": "", "img_dec": "",
                      "explore_id": 0, "friendship": 1, "items": "1,2", "like_items": "", "love_items": "3,3",
                      "hate_items": "x", "can_be_given_items": ""}],
            "npc_rewards": [{"id": 1, "npc": "Cpt Thomas", "level": 10, "silver": 100, "gold": 0, "item1": 2,
                             "item1_amt": 5, "item2": 0, "item2_amt": 0, "item3": 0, "item3_amt": 0},
                            {"id": 2, "npc": "Nobody", "level": 10, "silver": 0, "gold": 0, "item1": 0,
                             "item1_amt": 0, "item2": 0, "item2_amt": 0, "item3": 0, "item3_amt": 0}]
        });
        let dataset = parse_pages(&Npcs, vec![page(body)], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("npcs", 1), ("npc_items", 3), ("npc_rewards", 2), ("npc_reward_items", 1)]);
        assert!(
            dataset
                .notes
                .iter()
                .any(|note| note.contains("unreadable hates entries skipped, its stored items kept: x")),
            "{:?}",
            dataset.notes
        );
        assert!(dataset.notes.iter().any(|note| note.contains("\"Nobody\"")), "{:?}", dataset.notes);
        assert_eq!(dataset.dropped, 1);
    }

    // An empty list is refused rather than read as "delete every NPC".
    #[test]
    fn empty_answer_is_refused() {
        let error = parse_pages(&Npcs, vec![page(serde_json::json!({"npcs": []}))], Names::default());
        assert!(error.err().unwrap().to_string().contains("empty NPC list"));
    }
}
