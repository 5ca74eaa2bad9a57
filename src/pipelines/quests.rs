//! Quests (`/api/quests/`): what each quest asks for (items, silver, skill levels), what it gives,
//! who asks, and the quest it follows.
//!
//! The answer is a JSON array of quest objects. Item lists are `id|quantity` entries separated
//! by commas (`"2|10,5|1"`; empty for none). Dates are `YYYY-MM-DD` in game time (US Central),
//! `0000-00-00` for a quest that is always available; an end date means "through the end of that
//! day". `pred_id` names the quest this one follows (`0` for none); it may come before or after
//! that quest in the answer, or name one the answer does not list, so it is kept as a plain id.
//! Descriptions are HTML as the game writes it (`<br>` runs, `<font>`, `<marquee>`, and macros
//! such as `{player}` that the game fills in per player): `text` is what a browser shows of it,
//! with the macros left as they are, and `html` a clean copy with absolute links.
//!
//! Every field a quest row needs must be there: a quest missing one, or with a date or item
//! list that cannot be read, is skipped with a note and its stored version kept, so an answer cut
//! short in a field never turns into zeros. `npc_img` is the one field older answers lack: where
//! it is missing the stored picture stays.

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::items::rows::Item;
use super::items::transform::flag;
use super::shared::common::{json_answer, read_rows, Unreadable};
use super::shared::names::Resolver;
use super::shared::page_text::{clean_html, fragment_text};
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "quests";
const REQUEST: &str = "/api/quests/";

entity! {
    #[diesel(table_name = quests)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Quest {
        pub id: i64,
        pub title: String,
        /// Who gives the quest, as the API names them.
        pub npc_name: String,
        /// That NPC among the stored ones, when the name resolves.
        pub npc_id: Option<i64>,
        /// The quest giver's picture (`npc_img`); empty when the game shows none. `None` only
        /// when no answer so far carried a picture field.
        pub image: Option<String>,
        pub author: Option<String>,
        /// The quest this one follows; it may not be stored (yet).
        pub predecessor_id: Option<i64>,
        pub main_quest: bool,
        /// First day it can be done, `YYYY-MM-DD` in game time; `None` when always available.
        pub start_date: Option<String>,
        /// Last day it can be done (through the end of that day), `YYYY-MM-DD` in game time.
        pub end_date: Option<String>,
        /// The description as a browser shows it; game macros such as `{player}` are kept.
        pub text: String,
        /// The description as clean HTML, links absolute.
        pub html: String,
        pub reward_silver: i64,
        pub reward_gold: i64,
        pub required_silver: i64,
        /// An NPC the player must know, by the game's id; `None` for none.
        pub required_npc_id: Option<i64>,
        pub required_npc_level: i64,
        pub required_farming_level: i64,
        pub required_fishing_level: i64,
        pub required_crafting_level: i64,
        pub required_exploring_level: i64,
        pub required_cooking_level: i64,
        pub required_tower_level: i64,
        /// How many players have completed it.
        pub completed_count: i64,
    }
    key (id);
    roots (quests, quest);
    relations {
        /// Items the quest asks for.
        required_items: many quest_required_items.quest_id = id;
        /// Items the quest gives.
        reward_items: many quest_reward_items.quest_id = id;
        /// The quest this one follows.
        predecessor: one quests.id = predecessor_id;
        /// Quests that follow this one.
        next_quests: many quests.predecessor_id = id;
        /// The NPC who gives it.
        npc: one npcs.id = npc_id;
    }
}
stored_table!(
    Quest,
    quests,
    "quest",
    key(id),
    update(
        title,
        npc_name,
        npc_id,
        image,
        author,
        predecessor_id,
        main_quest,
        start_date,
        end_date,
        text,
        html,
        reward_silver,
        reward_gold,
        required_silver,
        required_npc_id,
        required_npc_level,
        required_farming_level,
        required_fishing_level,
        required_crafting_level,
        required_exploring_level,
        required_cooking_level,
        required_tower_level,
        completed_count
    ),
    unknown(image)
);

entity! {
    #[diesel(table_name = quest_required_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct QuestRequiredItem {
        pub quest_id: i64,
        /// Position in the quest's list, from 1.
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (quest_id, slot);
    roots (quest_required_items, quest_required_item);
    relations {
        quest: one quests.id = quest_id;
        item: one items.id = item_id;
    }
}
stored_table!(
    QuestRequiredItem,
    quest_required_items,
    "quest_required_item",
    key(quest_id, slot),
    update(item_id, quantity)
);

entity! {
    #[diesel(table_name = quest_reward_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct QuestRewardItem {
        pub quest_id: i64,
        /// Position in the quest's list, from 1.
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (quest_id, slot);
    roots (quest_reward_items, quest_reward_item);
    relations {
        quest: one quests.id = quest_id;
        item: one items.id = item_id;
    }
}
stored_table!(QuestRewardItem, quest_reward_items, "quest_reward_item", key(quest_id, slot), update(item_id, quantity));

links! {
    Item {
        /// Quests that ask for this item.
        required_for: many quest_required_items.item_id = id;
        /// Quests that give this item.
        reward_for: many quest_reward_items.item_id = id;
    }
}

/// One quest as the API sends it. No field has a default: a missing one makes the row
/// unreadable rather than zero (see the module documentation), except `npc_img`.
#[derive(Debug, Deserialize)]
struct RawQuest {
    id: i64,
    npc: String,
    npc_img: Option<String>,
    title: String,
    author: Option<String>,
    pred_id: i64,
    start_date: String,
    end_date: String,
    #[serde(deserialize_with = "flag")]
    main_quest: bool,
    description: String,
    reward_gold: i64,
    reward_silver: i64,
    reward_items: String,
    required_items: String,
    required_silver: i64,
    required_npc_id: i64,
    required_npc_level: i64,
    required_farming_level: i64,
    required_fishing_level: i64,
    required_crafting_level: i64,
    required_exploring_level: i64,
    required_cooking_level: i64,
    required_tower_level: i64,
    completed_count: i64,
}

/// `"2023-03-01"` → that date; `"0000-00-00"` (and empty) → none; anything else is an error.
fn game_date(field: &str, text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() || text == "0000-00-00" {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| Some(date.format("%Y-%m-%d").to_string()))
        .map_err(|_| format!("{field} {text:?} is not a YYYY-MM-DD date"))
}

/// `"2|10,5|1"` → `[(2, 10), (5, 1)]`; empty entries are skipped, unreadable ones returned apart.
fn item_list(text: &str) -> (Vec<(i64, i64)>, Vec<String>) {
    let mut items = Vec::new();
    let mut bad = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let parsed = entry
            .split_once('|')
            .and_then(|(id, quantity)| Some((id.trim().parse::<i64>().ok()?, quantity.trim().parse::<i64>().ok()?)));
        match parsed {
            Some((id, quantity)) if id > 0 && quantity > 0 => items.push((id, quantity)),
            _ => bad.push(entry.to_owned()),
        }
    }
    (items, bad)
}

fn non_zero(number: i64) -> Option<i64> {
    (number != 0).then_some(number)
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// One item list of every quest, and the quests whose stored list must be kept.
struct ItemLists<R> {
    rows: Vec<R>,
    unreadable: Unreadable,
}

impl<R> ItemLists<R> {
    fn new() -> Self {
        Self { rows: Vec::new(), unreadable: Unreadable::default() }
    }

    /// Reads quest `quest`'s `field` into rows made by `row`; unreadable entries keep the
    /// stored list and say so in `notes`.
    fn read(
        &mut self,
        quest: i64,
        field: &str,
        text: &str,
        notes: &mut Vec<String>,
        resolver: &mut Resolver<'_>,
        row: impl Fn(i64, i64, i64, i64) -> R,
    ) -> u64 {
        let (items, bad) = item_list(text);
        for (slot, (item, quantity)) in (1..).zip(items) {
            self.rows.push(row(quest, slot, resolver.item_id(item), quantity));
        }
        if bad.is_empty() {
            return 0;
        }
        notes.push(format!(
            "quest {quest}: unreadable {field} entries (not \"id|quantity\"), its stored {field} kept: {}",
            bad.join(", ")
        ));
        self.unreadable.add(Some(quest));
        bad.len() as u64
    }
}

#[derive(Default)]
pub struct Quests;

impl Source for Quests {
    const NAME: &'static str = NAME;
    /// Every 6 hours, at a hashed minute: seasonal quests come and go.
    const DEFAULT_SCHEDULE: &'static str = "H H H/6 * * *";
    const TRANSFORM_VERSION: u32 = 1;
    const RESOLVES_NPCS: bool = true;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::json(sample_answer()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = &input.pages[0];
        let raws: Vec<&RawValue> = json_answer(&page.body, &page.url)?;
        if raws.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} returned an empty quest list; refusing to read that as \"every quest is gone\"",
                page.url
            )));
        }
        let base = url::Url::parse(&page.url).ok().filter(|url| url.scheme().starts_with("http"));
        let mut notes = Vec::new();
        let mut resolver = Resolver::new(&input.names);
        let read = read_rows::<RawQuest>(raws, "quest", "id");
        let mut dropped = read.unreadable.len();
        notes.extend(read.notes);
        let mut unreadable = read.unreadable;
        let mut quests = Vec::with_capacity(read.rows.len());
        let mut required = ItemLists::new();
        let mut rewards = ItemLists::new();
        for raw in read.rows {
            let dates = game_date("start_date", &raw.start_date)
                .and_then(|start| Ok((start, game_date("end_date", &raw.end_date)?)));
            let (start_date, end_date) = match dates {
                Ok(dates) => dates,
                Err(problem) => {
                    notes.push(format!("quest {} skipped, its stored version kept: {problem}", raw.id));
                    unreadable.add(Some(raw.id));
                    dropped += 1;
                    continue;
                }
            };
            dropped += required.read(raw.id, "required_items", &raw.required_items, &mut notes, &mut resolver, {
                |quest_id, slot, item_id, quantity| QuestRequiredItem { quest_id, slot, item_id, quantity }
            });
            dropped += rewards.read(raw.id, "reward_items", &raw.reward_items, &mut notes, &mut resolver, {
                |quest_id, slot, item_id, quantity| QuestRewardItem { quest_id, slot, item_id, quantity }
            });
            let document = select::document::Document::from(raw.description.as_str());
            let html = document
                .find(select::predicate::Name("body"))
                .next()
                .map_or_else(String::new, |body| clean_html(body, base.as_ref(), &|_| None));
            quests.push(Quest {
                id: raw.id,
                title: raw.title.trim().to_owned(),
                npc_id: resolver.npc_in(&input.names.npcs, &raw.npc),
                npc_name: raw.npc.trim().to_owned(),
                image: raw.npc_img.map(|image| image.trim().to_owned()),
                author: non_empty(raw.author),
                predecessor_id: non_zero(raw.pred_id),
                main_quest: raw.main_quest,
                start_date,
                end_date,
                text: fragment_text(&raw.description),
                html,
                reward_silver: raw.reward_silver,
                reward_gold: raw.reward_gold,
                required_silver: raw.required_silver,
                required_npc_id: non_zero(raw.required_npc_id),
                required_npc_level: raw.required_npc_level,
                required_farming_level: raw.required_farming_level,
                required_fishing_level: raw.required_fishing_level,
                required_crafting_level: raw.required_crafting_level,
                required_exploring_level: raw.required_exploring_level,
                required_cooking_level: raw.required_cooking_level,
                required_tower_level: raw.required_tower_level,
                completed_count: raw.completed_count,
            });
        }
        if quests.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} listed quests but none could be read: {}",
                page.url,
                notes.first().map_or("", String::as_str)
            )));
        }
        let listed: std::collections::BTreeSet<i64> = quests.iter().map(|quest| quest.id).collect();
        let unlisted: Vec<String> = quests
            .iter()
            .filter_map(|quest| {
                let predecessor = quest.predecessor_id?;
                (!listed.contains(&predecessor) && !unreadable.protects(predecessor))
                    .then(|| format!("{} follows {predecessor}", quest.id))
            })
            .collect();
        if !unlisted.is_empty() {
            notes.push(format!(
                "quests naming a predecessor this answer does not list (kept as given): {}",
                unlisted.join(", ")
            ));
        }
        notes.extend(resolver.notes());

        let unreadable = std::sync::Arc::new(unreadable);
        let (keep_required, keep_rewards) = (unreadable.clone(), unreadable.clone());
        let (required_unreadable, reward_unreadable) = (required.unreadable, rewards.unreadable);
        Ok(Dataset::new()
            .table(quests, DeletePolicy::keep_where(move |row: &Quest| unreadable.protects(row.id)))
            .table(
                required.rows,
                DeletePolicy::keep_where(move |row: &QuestRequiredItem| {
                    keep_required.protects(row.quest_id) || required_unreadable.protects(row.quest_id)
                }),
            )
            .table(
                rewards.rows,
                DeletePolicy::keep_where(move |row: &QuestRewardItem| {
                    keep_rewards.protects(row.quest_id) || reward_unreadable.protects(row.quest_id)
                }),
            )
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The sample quest API answer: two short quest lines of the sample NPCs (each step follows the
/// one before), asking for and giving plain sample items, and one seasonal quest.
fn sample_answer() -> String {
    let givers = ["Marigold", "Captain Finch"];
    let lines = ["Helping Hands", "Fish Tales"];
    let numerals = ["", " II", " III", " IV"];
    let mut quests = Vec::new();
    for (line, (title, npc)) in lines.iter().zip(givers).enumerate() {
        for (step, numeral) in numerals.iter().enumerate() {
            let id = 100 + line as i64 * 10 + step as i64;
            let (wanted, wanted_name) = plain_item(line * 40 + step * 5);
            let (reward, _) = plain_item(line * 40 + step * 5 + 2);
            quests.push(json!({
                "id": id, "npc": npc, "npc_img": format!("/img/items/npc_{}.png", line + 1),
                "title": format!("{title}{numeral}"), "author": "", "pred_id": if step == 0 { 0 } else { id - 1 },
                "start_date": "0000-00-00", "end_date": "0000-00-00", "main_quest": i64::from(line == 0),
                "description": format!(
                    "Hello {{player}}! <br><br>Could you bring me <strong>{wanted_name}</strong>?\r\n<br>I will make it worth your while."
                ),
                "reward_gold": 0, "reward_silver": 500 * (step as i64 + 1),
                "reward_items": format!("{reward}|{}", step + 1),
                "required_items": format!("{wanted}|{}", 5 * (step + 1)),
                "required_silver": 0, "required_npc_id": 0, "required_npc_level": 0,
                "required_farming_level": 10 * step as i64, "required_fishing_level": if line == 1 { 5 } else { 0 },
                "required_crafting_level": 0, "required_exploring_level": 0, "required_cooking_level": 0,
                "required_tower_level": 0, "completed_count": 1000 - 100 * step as i64
            }));
        }
    }
    let (wanted, _) = plain_item(90);
    let (other, _) = plain_item(93);
    quests.push(json!({
        "id": 900, "npc": "Wren", "npc_img": "", "title": "Spring Thaw", "author": "Wren",
        "pred_id": 0, "start_date": "2026-03-01", "end_date": "2026-05-31", "main_quest": 0,
        "description": "The snow is melting.<br><br><font color=\"green\">Spring is here!</font color>",
        "reward_gold": 5, "reward_silver": 0, "reward_items": "", "required_items": format!("{wanted}|20,{other}|3"),
        "required_silver": 1000, "required_npc_id": 0, "required_npc_level": 0, "required_farming_level": 20,
        "required_fishing_level": 20, "required_crafting_level": 20, "required_exploring_level": 20,
        "required_cooking_level": 0, "required_tower_level": 0, "completed_count": 42
    }));
    serde_json::Value::Array(quests).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::shared::names::Names;
    use crate::pipelines::shared::source::{parse_pages, Page};

    fn page(body: &str) -> Page {
        Page {
            request: REQUEST.to_owned(),
            url: format!("https://farmrpg.com{REQUEST}"),
            body: Bytes::from(body.to_owned()),
        }
    }

    // The sample answer reads whole: every quest, its lists and its description's text.
    #[test]
    fn the_sample_answer_reads() {
        let dataset = parse_pages(&Quests, vec![page(&sample_answer())], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("quests", 9), ("quest_required_items", 10), ("quest_reward_items", 8)]);
    }

    // Dates, lists and the predecessor are read as the module documentation says.
    #[test]
    fn dates_lists_and_predecessors() {
        assert_eq!(game_date("start_date", "2023-03-01"), Ok(Some("2023-03-01".to_owned())));
        assert_eq!(game_date("start_date", "0000-00-00"), Ok(None));
        assert!(game_date("end_date", "31/05/2023").unwrap_err().contains("end_date \"31/05/2023\""));
        assert_eq!(item_list("2|10, 5|1,"), (vec![(2, 10), (5, 1)], vec![]));
        assert_eq!(item_list("2|x,7"), (vec![], vec!["2|x".to_owned(), "7".to_owned()]));
        assert_eq!(item_list(""), (vec![], vec![]));
    }

    // A quest with a field missing or an unreadable date is skipped and kept; an unreadable
    // item entry keeps that quest's stored list; an empty answer is refused.
    #[test]
    fn unreadable_quests_are_kept() {
        let sample: Vec<serde_json::Value> = serde_json::from_str(&sample_answer()).unwrap();
        let mut broken = sample.clone();
        broken[0].as_object_mut().unwrap().remove("completed_count");
        broken[1]["end_date"] = json!("soon");
        broken[2]["required_items"] = json!("12|");
        let body = serde_json::Value::Array(broken).to_string();
        let dataset = parse_pages(&Quests, vec![page(&body)], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("quests", 7), ("quest_required_items", 7), ("quest_reward_items", 6)]);
        let notes = dataset.notes.join("\n");
        assert!(
            notes.contains("quest 100 skipped, its stored version kept: .: missing field `completed_count`"),
            "{notes}"
        );
        assert!(notes.contains("quest 101 skipped, its stored version kept: end_date \"soon\""), "{notes}");
        assert!(notes.contains("quest 102: unreadable required_items entries"), "{notes}");
        assert_eq!(dataset.dropped, 3);
        let error = parse_pages(&Quests, vec![page("[]")], Names::default()).err().unwrap();
        assert!(error.to_string().contains("empty quest list"), "{error}");
    }
}
