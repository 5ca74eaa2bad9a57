//! Passwords (`/popwlog.php`): every password, when it was redeemed (as the page writes it: it
//! carries no year) and its rewards — items by name, and Silver and Gold listed like items.
//! The log accumulates: a password that scrolled off the page keeps its rows.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{name_and_quantity, squash, text_lines, Html};
use super::shared::names::Resolver;
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "passwords";
const REQUEST: &str = "/popwlog.php";

entity! {
    #[diesel(table_name = passwords)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Password {
        pub password: String,
        pub redeemed_at: Option<String>,
    }
    key (password);
    roots (passwords, password);
    relations {
        rewards: many password_rewards.password = password;
    }
}
stored_table!(Password, passwords, "password", key(password), update(redeemed_at));

entity! {
    #[diesel(table_name = password_rewards)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct PasswordReward {
        pub password: String,
        pub slot: i64,
        /// `item`, `silver` or `gold`.
        pub kind: String,
        pub item_id: Option<i64>,
        pub item_name: String,
        pub quantity: i64,
    }
    key (password, slot);
    roots (password_rewards, password_reward);
    relations {
        /// The item, for item rewards (Silver and Gold have none).
        item: one items.id = item_id;
        password_entry: one passwords.password = password;
    }
}
stored_table!(
    PasswordReward,
    password_rewards,
    "password_reward",
    key(password, slot),
    update(kind, item_id, item_name, quantity)
);

links! {
    Item {
        /// Passwords that reward this item.
        password_rewards: many password_rewards.item_id = id;
    }
}

#[derive(Default)]
pub struct Passwords;

impl Source for Passwords {
    const NAME: &'static str = NAME;
    /// Every 2 hours, at a hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H H/2 * * *";
    const TRANSFORM_VERSION: u32 = 1;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::html(sample_html()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = Html::parse(&input.pages[0]);
        let selector = "li.item-content div.item-title span:first-of-type";
        let rows = page.require(Name("li").and(Class("item-content")), "li.item-content")?;
        let mut resolver = Resolver::new(&input.names);
        let mut notes = Vec::new();
        let mut passwords = Vec::new();
        let mut rewards = Vec::new();
        let mut seen = BTreeSet::new();
        for row in rows {
            let Some(title) = row.find(Class("item-title")).next() else { continue };
            let spans: Vec<String> = title.find(Name("span")).map(|span| squash(&span.text())).collect();
            let Some(password) = spans.first().filter(|text| !text.is_empty()).cloned() else { continue };
            if !seen.insert(password.clone()) {
                notes.push(format!("password {password:?} is listed twice; the first entry (newest) is kept"));
                continue;
            }
            let redeemed_at = spans.get(1).filter(|text| !text.is_empty()).cloned();
            let lines = row.find(Class("item-after")).next().map(text_lines).unwrap_or_default();
            for (slot, line) in lines.iter().enumerate() {
                let Some((name, quantity)) = name_and_quantity(line) else {
                    notes.push(format!("password {password:?}: unreadable reward {line:?} skipped"));
                    continue;
                };
                let (kind, item_id) = match name.as_str() {
                    "Silver" => ("silver", None),
                    "Gold" => ("gold", None),
                    item => ("item", resolver.item(item)),
                };
                rewards.push(PasswordReward {
                    password: password.clone(),
                    slot: slot as i64 + 1,
                    kind: kind.to_owned(),
                    item_id,
                    item_name: name,
                    quantity,
                });
            }
            passwords.push(Password { password, redeemed_at });
        }
        if passwords.is_empty() {
            return Err(page.layout_error(selector));
        }
        let skipped = notes.len() as u64;
        notes.extend(resolver.notes());
        // Rewards of a password on the page are exactly what the page says; others are history.
        let listed = Arc::new(seen);
        Ok(Dataset::new()
            .table(passwords, DeletePolicy::KeepAll)
            .table(rewards, DeletePolicy::keep_where(move |row: &PasswordReward| !listed.contains(&row.password)))
            .with_notes(notes)
            .with_dropped(skipped))
    }
}

/// The sample password log: six passwords, every other one also giving silver.
fn sample_html() -> String {
    let mut page = navbar("Password Log") + "<div class=\"list-block\"><ul>\n";
    for (index, password) in ["lantern", "quill", "acorn", "kettle", "anchor", "clover"].iter().enumerate() {
        let (_, name) = plain_item(700 + index);
        let _ = writeln!(
            page,
            "<li class=\"item-content\"><div class=\"item-inner\"><div class=\"item-title\"><span>{password}</span> <span><br/>May {}, 10:{:02}:00 PM</span></div>\
             <div class=\"item-after\"><span><img>{name} (x{})<br/>{}</span></div></div></li>",
            index + 1,
            index * 7,
            index + 1,
            if index % 2 == 0 { "<img>Silver (x1,000)<br/>" } else { "" }
        );
    }
    page + "</ul></div>\n" + PAGE_END
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};

    // Items resolve by name; Silver and Gold are pseudo-items; a missing </li> is harmless.
    #[test]
    fn passwords_and_rewards() {
        let body = r#"<ul><li class="item-content"><div class="item-inner"><div class="item-title">
            <span>kristoff</span> <span><br/>Dec 23, 10:26:47 PM</span></div>
            <div class="item-after"><span><img>Christmas Tree (x1)<br/><img>Silver (x5,000)<br/></span></div></div>
            <li class="item-content"><div class="item-title"><span>olaf</span></div>
            <div class="item-after"><span><img>Mystery Box (x2)</span></div></ul>"#;
        let names = Names { items: NameIndex::new([("Christmas Tree".to_owned(), 7)]), ..Names::default() };
        let page = Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: body.into() };
        let dataset = parse_pages(&Passwords, vec![page], names).unwrap();
        assert_eq!(dataset.table_rows(), [("passwords", 2), ("password_rewards", 3)]);
        let rewards = dataset.rows_of("password_rewards");
        assert_eq!((rewards[0]["item_id"].as_i64(), rewards[1]["kind"].as_str()), (Some(7), Some("silver")));
        assert_eq!(rewards[1]["quantity"].as_i64(), Some(5000));
        assert!(dataset.notes.iter().any(|note| note.contains("\"Mystery Box\"")), "{:?}", dataset.notes);
        assert_eq!(dataset.rows_of("passwords")[0]["redeemed_at"], "Dec 23, 10:26:47 PM");
    }
}
