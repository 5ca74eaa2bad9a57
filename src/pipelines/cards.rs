//! The House of Cards (`/manage_hoc.php`, a staff table): which cards to play for which reward.
//! Rewards are named, not linked; the names resolve to item ids.

use std::fmt::Write as _;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{name_and_quantity, number, text_lines, Html};
use super::shared::names::Resolver;
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "cards";
const REQUEST: &str = "/manage_hoc.php";

entity! {
    #[diesel(table_name = card_combos)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct CardCombo {
        pub id: i64,
        pub reward_item_id: Option<i64>,
        pub reward_item_name: String,
        pub reward_quantity: i64,
        pub times_turned_in: i64,
    }
    key (id);
    roots (card_combos, card_combo);
    relations {
        cards: many card_combo_cards.combo_id = id;
        reward_item: one items.id = reward_item_id;
    }
}
stored_table!(
    CardCombo,
    card_combos,
    "card_combo",
    key(id),
    update(reward_item_id, reward_item_name, reward_quantity, times_turned_in)
);

entity! {
    #[diesel(table_name = card_combo_cards)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct CardComboCard {
        pub combo_id: i64,
        pub suit: String,
        pub quantity: i64,
    }
    key (combo_id, suit);
    roots (card_combo_cards, card_combo_card);
    relations {
        combo: one card_combos.id = combo_id;
    }
}
stored_table!(CardComboCard, card_combo_cards, "card_combo_card", key(combo_id, suit), update(quantity));

links! {
    Item {
        /// House of Cards combinations that reward this item.
        card_combos: many card_combos.reward_item_id = id;
    }
}

#[derive(Default)]
pub struct Cards;

impl Source for Cards {
    const NAME: &'static str = NAME;
    /// Daily, at a hashed time.
    const DEFAULT_SCHEDULE: &'static str = "H H H * * *";
    const TRANSFORM_VERSION: u32 = 1;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::html(sample_html()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = Html::parse(&input.pages[0]);
        let table = page.table_with("the card combo table", &["ID", "Cards to Play"])?;
        let (id, played, reward, turned_in) = (
            table.column("ID")?,
            table.column("Cards to Play")?,
            table.column("Reward")?,
            table.column("Times Turned In")?,
        );
        let read = table.read(id, |cells| {
            let combo = number(&cells.text(id)).ok_or_else(|| format!("ID {:?} is not a number", cells.text(id)))?;
            let (reward_name, reward_quantity) = cells
                .node(reward)
                .and_then(|cell| text_lines(cell).iter().find_map(|line| name_and_quantity(line)))
                .ok_or_else(|| format!("no \"Name (xN)\" reward in {:?}", cells.text(reward)))?;
            let times = number(&cells.text(turned_in))
                .ok_or_else(|| format!("Times Turned In {:?} is not a number", cells.text(turned_in)))?;
            let cards: Vec<(String, i64)> = cells
                .node(played)
                .map(|cell| text_lines(cell).iter().filter_map(|line| name_and_quantity(line)).collect())
                .unwrap_or_default();
            if cards.is_empty() {
                return Err(format!("no \"Suit (xN)\" cards in {:?}", cells.text(played)));
            }
            Ok((combo, reward_name, reward_quantity, times, cards))
        })?;
        let mut resolver = Resolver::new(&input.names);
        let mut combos = Vec::new();
        let mut cards = Vec::new();
        for (combo_id, reward_name, reward_quantity, times_turned_in, played) in read.rows {
            cards.extend(played.into_iter().map(|(suit, quantity)| CardComboCard { combo_id, suit, quantity }));
            combos.push(CardCombo {
                id: combo_id,
                reward_item_id: resolver.item(&reward_name),
                reward_item_name: reward_name,
                reward_quantity,
                times_turned_in,
            });
        }
        let mut notes = read.notes;
        notes.extend(resolver.notes());
        // A combo that could not be read keeps its stored row and cards.
        let (combo_guard, card_guard) = (read.unreadable.clone(), read.unreadable);
        let dropped = card_guard.len();
        Ok(Dataset::new()
            .table(combos, DeletePolicy::keep_where(move |row: &CardCombo| combo_guard.protects(row.id)))
            .table(cards, DeletePolicy::keep_where(move |row: &CardComboCard| card_guard.protects(row.combo_id)))
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The sample House of Cards table: four combinations, each rewarding a plain sample item.
fn sample_html() -> String {
    let mut page = String::from("<h2>All Card Combos</h2><table><tr><td>ID</td><td>Cards to Play</td><td>Reward</td><td>Times Turned In</td></tr>\n");
    let suits = ["Spades", "Hearts", "Diamonds", "Clubs"];
    for combo in 0..4_usize {
        let (_, reward) = plain_item(500 + combo);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><img> {} (x{}) <img> {} (x1) </td><td><img> {reward} (x{}) </td><td>{}</td></tr>",
            combo + 1,
            suits[combo],
            combo + 2,
            suits[(combo + 1) % 4],
            combo * 5 + 1,
            combo * 1234
        );
    }
    page + "</table>"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};

    // Cards per suit and the named reward are read from the staff table.
    #[test]
    fn combos_and_cards() {
        let body = "<table><tr><td>ID</td><td>Cards to Play</td><td>Reward</td><td>Times Turned In</td></tr>\
            <tr><td>3</td><td><img> Diamonds (x3) <img> Spades (x2)</td><td><img> Mega Cotton Seeds (x50)</td><td>1,204</td></tr>\
            </table>";
        let names = Names { items: NameIndex::new([("Mega Cotton Seeds".to_owned(), 9)]), ..Names::default() };
        let page = Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: body.into() };
        let dataset = parse_pages(&Cards, vec![page], names).unwrap();
        assert_eq!(dataset.table_rows(), [("card_combos", 1), ("card_combo_cards", 2)]);
        let combo = &dataset.rows_of("card_combos")[0];
        assert_eq!((combo["reward_item_id"].as_i64(), combo["times_turned_in"].as_i64()), (Some(9), Some(1204)));
    }
}
