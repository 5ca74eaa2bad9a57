//! The community center (`/comm.php`): today's goal and the last seven days' goals, one row per
//! game day. The goal item is given by name only (resolved to an id); the reward by link.
//! Goals accumulate: a day that scrolled off the page keeps its row.

use std::fmt::Write as _;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::node::Node;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{game_date, item_link_id, name_and_quantity, progress, text_lines, Html, LinkTo};
use super::shared::names::Resolver;
use super::shared::source::{game_today, Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "community";
const REQUEST: &str = "/comm.php";

entity! {
    #[diesel(table_name = community_goals)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct CommunityGoal {
        /// The game day, `YYYY-MM-DD`.
        pub goal_date: String,
        pub goal_item_id: Option<i64>,
        pub goal_item_name: String,
        pub goal_quantity: i64,
        pub reward_item_id: Option<i64>,
        pub reward_item_name: String,
        pub reward_quantity: i64,
        pub progress: Option<i64>,
        pub progress_percent: Option<f64>,
    }
    key (goal_date);
    roots (community_goals, community_goal);
    relations {
        goal_item: one items.id = goal_item_id;
        reward_item: one items.id = reward_item_id;
    }
}
stored_table!(
    CommunityGoal,
    community_goals,
    "community_goal",
    key(goal_date),
    update(
        goal_item_id,
        goal_item_name,
        goal_quantity,
        reward_item_id,
        reward_item_name,
        reward_quantity,
        progress,
        progress_percent
    )
);

links! {
    Item {
        /// Community-center days whose goal was this item.
        community_goals: many community_goals.goal_item_id = id;
        /// Community-center days that rewarded this item.
        community_rewards: many community_goals.reward_item_id = id;
    }
}

/// The last line of `node` that reads as `Name (quantity)`, after `prefix` if given.
fn quantity_line(node: Node<'_>, prefix: Option<&str>) -> Option<(String, i64)> {
    text_lines(node).iter().rev().find_map(|line| match prefix {
        Some(prefix) => line.strip_prefix(prefix).and_then(|rest| name_and_quantity(rest.trim())),
        None => name_and_quantity(line),
    })
}

fn current_goal(page: &Html, resolver: &mut Resolver<'_>) -> Result<CommunityGoal, StageError> {
    let section = page.section("Current Goal")?;
    let columns: Vec<Node<'_>> = section.find(Name("div").and(Class("col-50"))).collect();
    let [goal, reward] = columns[..] else {
        return Err(page.layout_error("\"Current Goal\" div.col-50 (goal and reward)"));
    };
    let (goal_name, goal_quantity) = quantity_line(goal, None)
        .ok_or_else(|| page.layout_error("\"Current Goal\" div.col-50 \"Name (quantity)\""))?;
    let (reward_name, reward_quantity) = quantity_line(reward, None)
        .ok_or_else(|| page.layout_error("\"Current Goal\" div.col-50 + div.col-50 \"Name (xN)\""))?;
    let reward_id = reward.find(LinkTo("item.php")).next().and_then(item_link_id);
    let progress = section
        .find(Name("strong"))
        .map(|strong| strong.text())
        .find(|text| text.trim_start().starts_with("Progress:"))
        .and_then(|text| progress(&text));
    Ok(read_goal(resolver, (goal_name, goal_quantity), (reward_name, reward_quantity), reward_id, progress))
}

/// A goal row from what the page shows; names resolve to ids (the reward's own link wins). Its
/// date is filled in by the caller: the current goal's follows from the past ones.
fn read_goal(
    resolver: &mut Resolver<'_>,
    (goal_name, goal_quantity): (String, i64),
    (reward_name, reward_quantity): (String, i64),
    reward_link: Option<i64>,
    progress: Option<(i64, i64, f64)>,
) -> CommunityGoal {
    CommunityGoal {
        goal_date: String::new(),
        goal_item_id: resolver.item(&goal_name),
        goal_item_name: goal_name,
        goal_quantity,
        reward_item_id: reward_link.or_else(|| resolver.item(&reward_name)),
        reward_item_name: reward_name,
        reward_quantity,
        progress: progress.map(|(done, _, _)| done),
        progress_percent: progress.map(|(_, _, percent)| percent),
    }
}

fn past_goals(
    page: &Html,
    resolver: &mut Resolver<'_>,
    notes: &mut Vec<String>,
) -> Result<Vec<CommunityGoal>, StageError> {
    let section = page.section("Last 7 Days")?;
    let mut goals = Vec::new();
    for row in section.find(Name("div").and(Class("item-content"))) {
        let Some(title) = row.find(Class("item-title")).next() else { continue };
        let lines = text_lines(title);
        let Some(date) = lines.first().and_then(|line| game_date(line)) else {
            notes.push(format!("a past goal without a readable date was skipped: {:?}", lines.join(" ")));
            continue;
        };
        let goal = quantity_line(title, Some("Goal:"));
        let reward = quantity_line(title, Some("Reward:"));
        let (Some((goal_name, goal_quantity)), Some((reward_name, reward_quantity))) = (goal, reward) else {
            notes.push(format!("the goal of {date} was skipped: no \"Goal: …\" / \"Reward: …\" lines"));
            continue;
        };
        let progress = title.find(Name("strong")).next().and_then(|strong| progress(&strong.text()));
        let reward_id = row.find(Class("item-media").descendant(LinkTo("item.php"))).next().and_then(item_link_id);
        let mut goal =
            read_goal(resolver, (goal_name, goal_quantity), (reward_name, reward_quantity), reward_id, progress);
        goal.goal_date = date.to_string();
        goals.push(goal);
    }
    Ok(goals)
}

#[derive(Default)]
pub struct Community;

impl Source for Community {
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
        let mut resolver = Resolver::new(&input.names);
        let mut notes = Vec::new();
        let mut current = current_goal(&page, &mut resolver)?;
        let mut goals = past_goals(&page, &mut resolver, &mut notes)?;
        // The page gives the current goal no date: it is the day after the newest past goal
        // (or, with no past goals shown, today in game time).
        let today = goals
            .iter()
            .filter_map(|goal| chrono::NaiveDate::parse_from_str(&goal.goal_date, "%Y-%m-%d").ok())
            .max()
            .and_then(|newest| newest.succ_opt())
            .unwrap_or_else(game_today);
        current.goal_date = today.to_string();
        goals.push(current);
        let skipped = notes.len() as u64;
        notes.extend(resolver.notes());
        Ok(Dataset::new().table(goals, DeletePolicy::KeepAll).with_notes(notes).with_dropped(skipped))
    }
}

/// The sample community center: the current goal and the last seven days'.
fn sample_html() -> String {
    let (goal_id, goal) = plain_item(300);
    let (reward_id, reward) = plain_item(301);
    let mut page = navbar("Community Center");
    let _ = writeln!(
        page,
        "<div class=\"content-block-title\">Current Goal</div><div class=\"card\"><div class=\"card-content\"><div class=\"card-content-inner\">\
         <div class=\"row\"><div class=\"col-50\"><strong>GOAL</strong><br/><br/><a href=\"item.php?id={goal_id}\"><img class='itemimg'></a><br/> {goal} (1,250,000) </div>\
         <div class=\"col-50\"><strong>REWARD</strong><br/><br/><a href=\"item.php?id={reward_id}\"><img class='itemimg'></a><br/> <span>{reward} (x25)</span></div></div>\
         <br/><strong>Progress: 612,500 / 1,250,000 (49.00%)</strong></div></div></div>\n\
         <div class=\"content-block-title\">Last 7 Days</div><div class=\"list-block\"><ul>"
    );
    for day in (3..=9).rev() {
        let (goal_id, goal) = plain_item(310 + day);
        let (reward_id, reward) = plain_item(320 + day);
        let _ = goal_id;
        let _ = writeln!(
            page,
            "<li><div class=\"item-content\"><div class=\"item-media\"><a href=\"item.php?id={reward_id}\"><img class=\"itemimg\"></a></div>\
             <div class=\"item-inner\"><div class=\"item-title\">Jul {day}th, 2023 <br/><span><strong>2,000,000 / 1,000,000 (200.00%)</strong><br/>\
             Goal: {goal} (1,000,000)<br/> Reward: {reward} (x10) </span></div></div></div></li>"
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

    const PAGE: &str = r#"<div class="content-block-title">Current Goal</div><div class="card"><div class="row">
        <div class="col-50"><strong>GOAL</strong><br/><a href="item.php?id=43"><img></a><br/> Mushroom (2,754,400) </div>
        <div class="col-50"><strong>REWARD</strong><br/><a href="item.php?id=382"><img></a><br/><span>Grasshopper (x40)</span></div>
        </div><strong>Progress: 1,663,146 / 2,754,400 (60.38%)</strong></div>
        <div class="content-block-title">Last 7 Days</div><div class="list-block"><ul>
        <li><div class="item-content"><div class="item-media"><a href="item.php?id=339"></a></div>
        <div class="item-title">Jul 9th, 2023 <br/><span><strong>7,464,756 / 1,367,100 (546.03%)</strong><br/>
        Goal: Starfish (1,367,100)<br/> Reward: Small Screw (x10) </span></div></div></li></ul></div>"#;

    // The current goal is dated the day after the newest past goal; names resolve.
    #[test]
    fn current_and_past_goals() {
        let names = Names { items: NameIndex::new([("Mushroom".to_owned(), 43)]), ..Names::default() };
        let page = Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: PAGE.into() };
        let dataset = parse_pages(&Community, vec![page], names).unwrap();
        assert_eq!(dataset.table_rows(), [("community_goals", 2)]);
        assert!(dataset.notes.iter().any(|note| note.contains("\"Starfish\"")), "{:?}", dataset.notes);
        assert_eq!(dataset.dropped, 0);
        let rows = dataset.rows_of("community_goals");
        assert_eq!(rows[1]["goal_date"], "2023-07-10");
        assert_eq!((rows[1]["goal_item_id"].as_i64(), rows[1]["reward_item_id"].as_i64()), (Some(43), Some(382)));
        assert_eq!(
            (rows[1]["goal_quantity"].as_i64(), rows[1]["progress"].as_i64()),
            (Some(2_754_400), Some(1_663_146))
        );
        assert_eq!(
            (rows[0]["goal_date"].as_str(), rows[0]["reward_item_id"].as_i64()),
            (Some("2023-07-09"), Some(339))
        );
    }
}
