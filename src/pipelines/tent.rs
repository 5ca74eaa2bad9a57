//! Borgen's tent (`/tent.php`): the items Borgen sells for Ancient Coins. The tent opens on
//! Wednesdays in game time, so the default schedule runs only then; each week's stock is kept
//! under the date of that Wednesday.

use std::fmt::Write as _;

use chrono::Datelike;
use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Attr, Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{item_link_id, number, squash, Html, LinkTo};
use super::shared::names::Resolver;
use super::shared::source::{game_today, Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "tent";
const REQUEST: &str = "/tent.php";

entity! {
    #[diesel(table_name = tent_offers)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct TentOffer {
        /// The Wednesday (game time) the tent opened, `YYYY-MM-DD`.
        pub week: String,
        pub item_id: i64,
        pub item_name: String,
        /// Ancient Coins. The page shows "Inv Full" instead of a price when the player's
        /// inventory is full: that run keeps the last known price (`None` only when no price was
        /// ever seen for this offer).
        pub price: Option<i64>,
    }
    key (week, item_id);
    roots (tent_offers, tent_offer);
    relations {
        item: one items.id = item_id;
    }
}
stored_table!(TentOffer, tent_offers, "tent_offer", key(week, item_id), update(item_name, price), unknown(price));

links! {
    Item {
        /// Weeks Borgen sold this item.
        tent_offers: many tent_offers.item_id = id;
    }
}

/// The Wednesday on or before `day`.
pub fn tent_week(day: chrono::NaiveDate) -> chrono::NaiveDate {
    let since_wednesday = (day.weekday().num_days_from_monday() + 7 - 2) % 7;
    day - chrono::Days::new(u64::from(since_wednesday))
}

pub fn parse_offers(page: &Html, week: &str) -> Result<Vec<TentOffer>, StageError> {
    let section = page.section("Take a look")?;
    let mut offers = Vec::new();
    for row in section.find(Name("div").and(Class("item-content"))) {
        let Some(item_id) = row.find(Class("item-media").descendant(LinkTo("item.php"))).next().and_then(item_link_id)
        else {
            continue;
        };
        let name = row
            .find(Class("item-title").descendant(Name("strong").and(Attr("data-inv", ()))))
            .next()
            .map(|strong| squash(&strong.text()))
            .unwrap_or_default();
        let price = row
            .find(Class("item-after").descendant(Name("button")))
            .map(|button| squash(&button.text()))
            .find_map(|text| text.strip_suffix("AC").and_then(number));
        offers.push(TentOffer { week: week.to_owned(), item_id, item_name: name, price });
    }
    if offers.is_empty() {
        return Err(page.layout_error("\"Take a look\" div.item-content div.item-media a[href*=\"?id=\"]"));
    }
    Ok(offers)
}

#[derive(Default)]
pub struct Tent;

impl Source for Tent {
    const NAME: &'static str = NAME;
    /// Wednesdays only (set `timezone = "America/Chicago"`, the game's, by default), hourly at a
    /// hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H * * * WED";
    // The tent opens on Wednesdays in game time.
    const DEFAULT_TIME_ZONE: Option<&'static str> = Some("America/Chicago");
    const TRANSFORM_VERSION: u32 = 1;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::html(sample_html()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = Html::parse(&input.pages[0]);
        let mut resolver = Resolver::new(&input.names);
        let mut offers = parse_offers(&page, &tent_week(game_today()).to_string())?;
        for offer in &mut offers {
            offer.item_id = resolver.item_id(offer.item_id);
        }
        Ok(Dataset::new().table(offers, DeletePolicy::KeepAll).with_notes(resolver.notes()))
    }
}

/// The sample tent: five offers of plain sample items.
fn sample_html() -> String {
    let mut page = navbar("Borgen's Camp")
        + "<div class=\"content-block-title\">Take a look</div><div class=\"card\"><div class=\"list-block\"><ul>\n";
    for offer in 0..5_usize {
        let (id, name) = plain_item(520 + offer);
        let _ = writeln!(
            page,
            "<li class=\"close-panel\"><div class=\"item-content\"><div class=\"item-media\"><a href=\"item.php?id={id}\"><img class=\"itemimg\"></a></div>\
             <div class=\"item-inner\"><div class=\"item-title\"><strong data-inv=\"3\">{name}</strong></div>\
             <div class=\"item-after\"><button class=\"button buybtn\"><span>{}</span> AC</button></div></div></div></li>",
            offer * 2 + 1
        );
    }
    page + "</ul></div></div>\n" + PAGE_END
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Buyable, unaffordable and "Inv Full" rows all load; prices are read from both buttons.
    #[test]
    fn offers_and_prices() {
        let page = Html::from_text(
            REQUEST,
            r#"<div class="content-block-title">Take a look</div><div class="card"><ul>
            <li><div class="item-content"><div class="item-media"><a href="item.php?id=103"></a></div>
              <div class="item-title"><strong data-inv="9089">Coal</strong></div>
              <div class="item-after"><button class="button buybtn"><span class="price103">1</span> AC</button></div></div>
            <li><div class="item-content"><div class="item-media"><a href="item.php?id=84"></a></div>
              <div class="item-title"><strong data-inv="1">Orange Juice</strong></div>
              <div class="item-after"><button class="button btnred">6 AC</button></div></div>
            <li><div class="item-content"><div class="item-media"><a href="item.php?id=153"></a></div>
              <div class="item-title"><strong data-inv="2">Iron</strong></div><div class="item-after">Inv Full</div></div>
            </ul></div>"#,
        );
        let offers = parse_offers(&page, "2023-05-24").unwrap();
        let prices: Vec<_> =
            offers.iter().map(|offer| (offer.item_id, offer.item_name.as_str(), offer.price)).collect();
        assert_eq!(prices, [(103, "Coal", Some(1)), (84, "Orange Juice", Some(6)), (153, "Iron", None)]);
    }

    // Every day of a week maps to the Wednesday that opened it.
    #[test]
    fn weeks_start_on_wednesday() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(tent_week(day("2023-05-24")), day("2023-05-24"));
        assert_eq!(tent_week(day("2023-05-30")), day("2023-05-24"));
        assert_eq!(tent_week(day("2023-05-23")), day("2023-05-17"));
    }
}
