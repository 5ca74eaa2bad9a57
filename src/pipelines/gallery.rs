//! Profile backgrounds (`/gallery.php`): each background and what unlocking it costs — items,
//! or Silver or Gold, which the page lists like items. Game themes share the page's tile markup
//! but are not backgrounds and are left out; backgrounds the account already owns or uses are
//! kept, without a cost (the page shows none for them).

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{number, squash, Html};
use super::shared::names::Resolver;
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "gallery";
const REQUEST: &str = "/gallery.php";

entity! {
    #[diesel(table_name = profile_backgrounds)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct ProfileBackground {
        pub name: String,
        pub background_id: Option<i64>,
        pub image: String,
        pub players_unlocked: Option<i64>,
        /// `item`, `silver` or `gold`; `None` for a background the page shows without a cost.
        pub cost_kind: Option<String>,
        pub cost_item_id: Option<i64>,
        pub cost_item_name: Option<String>,
        pub cost_quantity: Option<i64>,
    }
    key (name);
    roots (profile_backgrounds, profile_background);
    relations {
        cost_item: one items.id = cost_item_id;
    }
}
stored_table!(
    ProfileBackground,
    profile_backgrounds,
    "profile_background",
    key(name),
    update(background_id, image, players_unlocked, cost_kind, cost_item_id, cost_item_name, cost_quantity), label name
);

links! {
    Item {
        /// Profile backgrounds that cost this item.
        unlocks_backgrounds: many profile_backgrounds.cost_item_id = id;
    }
}

/// `Unlock (10x Model Ship)`, `Unlock (5/25 Winged Amulet)` (5 of 25 owned),
/// `Unlock (1,000,000,000 Silver)` → (quantity, name).
pub fn unlock_cost(text: &str) -> Option<(i64, String)> {
    let inner = squash(text);
    let inner = inner.strip_prefix("Unlock")?.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
    let (amount, name) = inner.split_once(' ')?;
    let amount = amount.strip_suffix('x').unwrap_or(amount);
    let amount = amount.rsplit('/').next()?;
    Some((number(amount)?, name.trim().to_owned()))
}

#[derive(Default)]
pub struct Gallery;

impl Source for Gallery {
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
        let selector = "div.col-50 > img[src*=\"/pbgs/\"] + strong + button";
        let tiles = page.require(Name("div").and(Class("col-50")), selector)?;
        let mut resolver = Resolver::new(&input.names);
        let mut backgrounds = Vec::new();
        for tile in tiles {
            let (Some(image), Some(name), Some(button)) = (
                tile.find(Name("img")).next().and_then(|img| img.attr("src")),
                tile.find(Name("strong")).next().map(|strong| squash(&strong.text())),
                tile.find(Name("button")).next(),
            ) else {
                continue;
            };
            let is_theme = button.attr("data-type") == Some("theme")
                || button.is(Class("activepthmbtn"))
                || image.contains("/pbgs/theme")
                || button.attr("data-type").is_some_and(|kind| kind.starts_with("th"));
            if !image.contains("/pbgs/") || is_theme {
                continue;
            }
            let players_unlocked = tile
                .find(Name("span"))
                .map(|span| squash(&span.text()))
                .find_map(|text| text.strip_suffix("players unlocked").and_then(number));
            let cost = unlock_cost(&button.text());
            let (cost_kind, cost_item_id) = match cost.as_ref().map(|(_, name)| name.as_str()) {
                None => (None, None),
                Some("Silver") => (Some("silver"), None),
                Some("Gold") => (Some("gold"), None),
                Some(item) => (Some("item"), resolver.item(item)),
            };
            backgrounds.push(ProfileBackground {
                name,
                background_id: button.attr("data-id").and_then(|id| id.trim().parse().ok()),
                image: image.to_owned(),
                players_unlocked,
                cost_kind: cost_kind.map(str::to_owned),
                cost_item_id,
                cost_quantity: cost.as_ref().map(|(quantity, _)| *quantity),
                cost_item_name: cost.map(|(_, name)| name),
            });
        }
        if backgrounds.is_empty() {
            return Err(page.layout_error(selector));
        }
        Ok(Dataset::new().table(backgrounds, DeletePolicy::Replace).with_notes(resolver.notes()))
    }
}

/// The sample art gallery: the default background and theme, and four scenes to unlock (one
/// for gold).
fn sample_html() -> String {
    let mut page = navbar("Art Gallery") + "<div class=\"row\">\n";
    let tile = |image: &str, name: &str, button: &str| {
        format!("<div class=\"col-50\"><img src=\"{image}\"><br/><strong>{name}</strong><br/><span>1,024 players unlocked</span><br/>{button}</div>\n")
    };
    page += &tile(
        "/img/pbgs/light/bg_def.jpg",
        "Home Farm",
        "<button class='button btnblue activepbgbtn' data-id='1'>Use this Background</button>",
    );
    for index in 0..4_usize {
        let (_, name) = plain_item(720 + index);
        let cost = if index == 3 { "250 Gold".to_owned() } else { format!("{}x {name}", (index + 1) * 10) };
        page += &tile(
            &format!("/img/pbgs/light/bg_{index}.jpg"),
            &format!("Scene {}", index + 1),
            &format!(
                "<button class='button btngreen unlockpbgbtn' data-type='bg' data-id='{}'>Unlock ({cost})</button>",
                index + 2
            ),
        );
    }
    page += &tile(
        "/img/pbgs/theme_def.jpg",
        "Default Theme",
        "<button class='button btnblue activepthmbtn' data-id='9'>Use this Theme</button>",
    );
    page + "</div>\n" + PAGE_END
}

#[cfg(test)]
mod tests {
    use super::*;

    // The three ways a cost is written.
    #[test]
    fn unlock_costs_parse() {
        assert_eq!(unlock_cost("Unlock (10x Model Ship)"), Some((10, "Model Ship".to_owned())));
        assert_eq!(unlock_cost("Unlock (5/25 Winged Amulet)"), Some((25, "Winged Amulet".to_owned())));
        assert_eq!(unlock_cost(" Unlock (1,000,000,000 Silver) "), Some((1_000_000_000, "Silver".to_owned())));
        assert_eq!(unlock_cost("Use this Background"), None);
    }
}
