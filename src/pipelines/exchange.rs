//! The exchange center (`/exchange.php`): Lorn's trade offers, which change twice a day. Offers
//! accumulate with the game days they were first and last seen on; an offer that left the page
//! keeps its row.

use std::fmt::Write as _;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::node::Node;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{item_link_id, name_and_quantity, next_element, squash, text_lines, Html, LinkTo};
use super::shared::names::Resolver;
use super::shared::source::{game_today, Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "exchange";
const REQUEST: &str = "/exchange.php";

entity! {
    #[diesel(table_name = exchange_offers)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct ExchangeOffer {
        pub give_item_id: i64,
        pub give_quantity: i64,
        pub receive_item_id: i64,
        pub receive_quantity: i64,
        pub give_item_name: String,
        pub receive_item_name: String,
        pub one_shot: bool,
        pub trade_id: Option<i64>,
        pub first_seen: String,
        pub last_seen: String,
    }
    key (give_item_id, give_quantity, receive_item_id, receive_quantity);
    roots (exchange_offers, exchange_offer);
    relations {
        give_item: one items.id = give_item_id;
        receive_item: one items.id = receive_item_id;
    }
}
stored_table!(ExchangeOffer, exchange_offers, "exchange_offer",
    key (give_item_id, give_quantity, receive_item_id, receive_quantity),
    update (give_item_name, receive_item_name, one_shot, trade_id, first_seen, last_seen), merge keep_first_seen);

links! {
    Item {
        /// Exchange offers that take this item.
        exchange_offers_taking: many exchange_offers.give_item_id = id;
        /// Exchange offers that give this item.
        exchange_offers_giving: many exchange_offers.receive_item_id = id;
    }
}

/// An offer seen again keeps the day it was first seen on.
fn keep_first_seen(row: &mut ExchangeOffer, stored: &ExchangeOffer) {
    if stored.first_seen < row.first_seen {
        row.first_seen.clone_from(&stored.first_seen);
    }
}

/// One side of an offer: the linked item and `Name (xN)`.
fn side(column: Node<'_>) -> Option<(i64, String, i64)> {
    let id = column.find(LinkTo("item.php")).next().and_then(item_link_id)?;
    let (name, quantity) = text_lines(column).iter().find_map(|line| name_and_quantity(line))?;
    Some((id, name, quantity))
}

pub fn parse_offers(page: &Html, seen_on: &str, resolver: &mut Resolver<'_>) -> Result<Vec<ExchangeOffer>, StageError> {
    let selector = "div.card div.row > div.col-50 \"Trade in\" + div.col-50";
    let mut offers = Vec::new();
    let cards = page.find(Name("div").and(Class("card"))).filter(|card| {
        card.find(Class("col-50")).next().is_some_and(|column| squash(&column.text()).starts_with("Trade in"))
    });
    for card in cards {
        let columns: Vec<Node<'_>> = card.find(Name("div").and(Class("col-50"))).collect();
        let [give, receive] = columns[..] else { return Err(page.layout_error(selector)) };
        let (Some(give), Some(receive)) = (side(give), side(receive)) else {
            return Err(page.layout_error(&format!("{selector} a[href^=\"item.php\"] + \"Name (xN)\"")));
        };
        let trade_id = next_element(card)
            .filter(|next| next.is(Class("acceptbtn")))
            .and_then(|button| button.attr("data-id"))
            .and_then(|id| id.trim().parse().ok());
        offers.push(ExchangeOffer {
            give_item_id: resolver.item_id(give.0),
            give_quantity: give.2,
            receive_item_id: resolver.item_id(receive.0),
            receive_quantity: receive.2,
            give_item_name: give.1,
            receive_item_name: receive.1,
            one_shot: squash(&card.text()).contains("can only ever be accepted once"),
            trade_id,
            first_seen: seen_on.to_owned(),
            last_seen: seen_on.to_owned(),
        });
    }
    if offers.is_empty() {
        return Err(page.layout_error(selector));
    }
    Ok(offers)
}

#[derive(Default)]
pub struct Exchange;

impl Source for Exchange {
    const NAME: &'static str = NAME;
    /// Offers change at midnight and noon game time: every 3 hours at a hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H H/3 * * *";
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
        let offers = parse_offers(&page, &game_today().to_string(), &mut resolver)?;
        Ok(Dataset::new().table(offers, DeletePolicy::KeepAll).with_notes(resolver.notes()))
    }
}

/// The sample exchange center: three offers, the first of them once only.
fn sample_html() -> String {
    let mut page = navbar("Exchange Center") + "<div class=\"content-block-title\">Current Offers</div>\n";
    for offer in 0..3 {
        let (give_id, give) = plain_item(400 + offer * 2);
        let (get_id, get) = plain_item(401 + offer * 2);
        let _ = writeln!(
            page,
            "<div class=\"card\"><div class=\"card-content\"><div class=\"card-content-inner\"><div class=\"row\">\
             <div class=\"col-50\"><strong>Trade in</strong><br/><br/><a href=\"item.php?id={give_id}\"><img class='itemimg'></a><br/> {give} (x{}) <br/><span>You have 12</span></div>\
             <div class=\"col-50\"><strong>You receive</strong><br/><br/><a href=\"item.php?id={get_id}\"><img class='itemimg'></a><br/> {get} (x{}) <br/><span>You have 3</span></div></div>\
             <div>{}</div></div></div></div>\n<a href=\"#\" class='button btngreen acceptbtn' data-id=\"{}\">Accept Offer</a>",
            (offer + 1) * 100,
            offer + 1,
            if offer == 0 { "This offer can only ever be accepted once" } else { "" },
            offer + 1
        );
    }
    page + PAGE_END
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::Names;

    const OFFER: &str = r##"<div class="card"><div class="row"><div class="col-50"><strong>Trade in</strong><br/>
        <a href="item.php?id=111"><img></a><br/> Bird Egg (x500) <br/><span>You have 571</span></div>
        <div class="col-50"><strong>You receive</strong><a href="item.php?id=508"></a><br/> Arnold Palmer (x5)</div></div>
        <div>This offer can only ever be accepted once</div></div>
        <a href="#" class='button btngreen acceptbtn' data-id="4">Accept Offer</a>"##;

    // Both sides, the one-shot notice and the trade id are read.
    #[test]
    fn offers_are_read() {
        let names = Names::default();
        let mut resolver = Resolver::new(&names);
        let offers = parse_offers(&Html::from_text(REQUEST, OFFER), "2023-05-20", &mut resolver).unwrap();
        let offer = &offers[0];
        assert_eq!((offer.give_item_id, offer.give_quantity, offer.give_item_name.as_str()), (111, 500, "Bird Egg"));
        assert_eq!((offer.receive_item_id, offer.receive_quantity), (508, 5));
        assert_eq!((offer.one_shot, offer.trade_id), (true, Some(4)));
    }

    // A stored offer keeps the day it was first seen.
    #[test]
    fn first_seen_survives() {
        let names = Names::default();
        let mut resolver = Resolver::new(&names);
        let page = Html::from_text(REQUEST, OFFER);
        let stored = parse_offers(&page, "2023-05-01", &mut resolver).unwrap().remove(0);
        let mut row = parse_offers(&page, "2023-05-20", &mut resolver).unwrap().remove(0);
        keep_first_seen(&mut row, &stored);
        assert_eq!((row.first_seen.as_str(), row.last_seen.as_str()), ("2023-05-01", "2023-05-20"));
    }
}
