//! The one list of pipelines this build ships.
//!
//! Everything that needs to know which pipelines exist reads [`REGISTRY`]: the names ([`KNOWN`]),
//! default schedules and time zones, the order `run all` uses, the entities `count` knows, the
//! dashboard's and status's lists, and the builder of each supervised chain. Adding a source is
//! its module, its migrations and one entry here; a name without an entry cannot be run, built
//! or configured, because nothing else lists names. Its GraphQL entities join [`EntityQuery`]
//! below, the one list the query root is made of.

use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle};
use hayloft_actors::supervisor::ChildSpec;

use super::cards::{CardCombo, CardComboCard};
use super::community::CommunityGoal;
use super::exchange::ExchangeOffer;
use super::gallery::ProfileBackground;
use super::item_pages::{ItemDetail, ItemSource};
use super::items::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use super::locations::{Location, LocationDrop};
use super::npc_pages::NpcProfile;
use super::npcs::{Npc, NpcItem, NpcReward, NpcRewardItem};
use super::passwords::{Password, PasswordReward};
use super::shared::source::{self, Source};
use super::shared::BuildParts;
use super::tent::TentOffer;
use super::tower::{TowerLevel, TowerReward};
use super::updates::{GameUpdate, GameUpdateItem};
use super::{
    cards, community, demo, exchange, gallery, item_pages, items, locations, npc_pages, npcs, passwords, tent, tower,
    updates,
};
use crate::front_doors::graphql::entity::entity_schema;

/// Builds one pipeline's supervised extractor → transformer → loader chain.
pub type BuildFn = fn(&BuildParts<'_>, PipelineDeps) -> (ChildSpec, PipelineHandle);

/// A table a pipeline loads, under the name `count` knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    /// What `count` is asked for (`npc-items`).
    pub name: &'static str,
    /// The table holding its rows.
    pub table: &'static str,
    /// What it counts, for help texts.
    pub about: &'static str,
}

/// One pipeline.
#[derive(Clone, Copy)]
pub struct PipelineEntry {
    pub name: &'static str,
    /// Its schedule when the configuration names none.
    pub default_schedule: &'static str,
    /// The time zone its default schedule is meant in, when it is not the server's.
    pub default_time_zone: Option<&'static str>,
    /// Pipelines whose stored rows it reads (to resolve names, or to fan out): they run first
    /// in `run all`, and must come earlier in [`REGISTRY`].
    pub depends_on: &'static [&'static str],
    /// The tables it loads, first the one its rows hang from.
    pub entities: &'static [Entity],
    pub build: BuildFn,
}

impl std::fmt::Debug for PipelineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineEntry").field("name", &self.name).field("depends_on", &self.depends_on).finish()
    }
}

const fn entity(name: &'static str, table: &'static str, about: &'static str) -> Entity {
    Entity { name, table, about }
}

/// The entry of a page-based source: name, schedule and builder come from its [`Source`] impl.
const fn source_entry<S: Source + Default>(
    depends_on: &'static [&'static str],
    entities: &'static [Entity],
) -> PipelineEntry {
    PipelineEntry {
        name: S::NAME,
        default_schedule: S::DEFAULT_SCHEDULE,
        default_time_zone: S::DEFAULT_TIME_ZONE,
        depends_on,
        entities,
        build: build_source::<S>,
    }
}

fn build_source<S: Source + Default>(parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    source::build(S::default(), parts, deps)
}

/// Every pipeline, in the order `run all` uses: items first (everything refers to them), NPCs
/// before the NPC pages merged into them, locations before item pages naming them.
pub const REGISTRY: [PipelineEntry; 14] = [
    PipelineEntry {
        name: items::NAME,
        default_schedule: items::DEFAULT_SCHEDULE,
        default_time_zone: None,
        depends_on: &[],
        entities: &[
            entity("items", "items", "game items"),
            entity("recipes", "recipe_ingredients", "crafting and cooking ingredients"),
            entity("locksmith", "locksmith_contents", "what openable items contain"),
            entity("seeds", "seed_crops", "crops each seed can yield"),
            entity("well", "wishing_well_outputs", "wishing-well outputs"),
        ],
        build: items::build,
    },
    source_entry::<npcs::Npcs>(
        &[items::NAME],
        &[
            entity("npcs", "npcs", "townsfolk"),
            entity("npc-items", "npc_items", "items NPCs give, like, love, hate or can be given"),
            entity("npc-rewards", "npc_rewards", "NPC friendship rewards"),
        ],
    ),
    source_entry::<npc_pages::NpcPages>(
        &[items::NAME, npcs::NAME],
        &[entity("npc-profiles", "npc_profiles", "NPC friendship levels and staff details")],
    ),
    source_entry::<tower::Tower>(
        &[items::NAME],
        &[
            entity("tower", "tower_levels", "tower levels"),
            entity("tower-rewards", "tower_rewards", "tower item rewards"),
        ],
    ),
    source_entry::<locations::Locations>(
        &[items::NAME],
        &[
            entity("locations", "locations", "fishing and exploring locations"),
            entity("drops", "location_drops", "items found at each location"),
        ],
    ),
    source_entry::<item_pages::ItemPages>(
        &[items::NAME, locations::NAME],
        &[
            entity("item-details", "item_details", "item-page details"),
            entity("item-sources", "item_sources", "locations item pages list"),
        ],
    ),
    source_entry::<community::Community>(
        &[items::NAME],
        &[entity("community", "community_goals", "community-center goals by day")],
    ),
    source_entry::<exchange::Exchange>(
        &[items::NAME],
        &[entity("exchange", "exchange_offers", "exchange-center offers seen")],
    ),
    source_entry::<cards::Cards>(&[], &[entity("cards", "card_combos", "House of Cards combinations")]),
    source_entry::<tent::Tent>(&[items::NAME], &[entity("tent", "tent_offers", "Borgen's tent offers by week")]),
    source_entry::<updates::Updates>(&[items::NAME], &[entity("updates", "game_updates", "game update posts")]),
    source_entry::<passwords::Passwords>(
        &[items::NAME],
        &[entity("passwords", "passwords", "passwords and their rewards")],
    ),
    source_entry::<gallery::Gallery>(&[], &[entity("backgrounds", "profile_backgrounds", "profile backgrounds")]),
    PipelineEntry {
        name: demo::NAME,
        default_schedule: demo::DEFAULT_SCHEDULE,
        default_time_zone: None,
        depends_on: &[],
        entities: &[entity("demo", "demo_records", "rows loaded by the demo pipeline")],
        build: demo::build,
    },
];

entity_schema! {
    /// Every entity's root fields, in the schema's order: a source's entities, then the next
    /// source's. `+ [sources]` names the sources that add relations to an entity (their
    /// `links!`), in the order the entity's fields list them.
    pub struct EntityQuery {
        Item + [npcs, locations, tower, passwords, community, exchange, cards, tent, updates, gallery, item_pages],
        RecipeIngredient,
        LocksmithContent,
        SeedCrop,
        WellOutput,
        Npc,
        NpcItem,
        NpcReward,
        NpcRewardItem,
        NpcProfile,
        TowerLevel,
        TowerReward,
        Location + [item_pages],
        LocationDrop,
        CommunityGoal,
        ExchangeOffer,
        CardCombo,
        CardComboCard,
        TentOffer,
        GameUpdate,
        GameUpdateItem,
        Password,
        PasswordReward,
        ProfileBackground,
        ItemDetail,
        ItemSource,
    }
}

/// Every pipeline name, in [`REGISTRY`] order.
pub const KNOWN: [&str; REGISTRY.len()] = {
    let mut names = [""; REGISTRY.len()];
    let mut index = 0;
    while index < REGISTRY.len() {
        names[index] = REGISTRY[index].name;
        index += 1;
    }
    names
};

const fn same(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left.len() != right.len() {
        return false;
    }
    let mut index = 0;
    while index < left.len() {
        if left[index] != right[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Names are unique and every dependency comes earlier, so `run all` in registry order loads
/// what a pipeline reads before it runs. Checked while compiling: a wrong entry does not build.
const _: () = {
    let mut index = 0;
    while index < REGISTRY.len() {
        let entry = &REGISTRY[index];
        let mut other = 0;
        while other < index {
            assert!(!same(REGISTRY[other].name, entry.name), "two registry entries share a name");
            other += 1;
        }
        let mut dependency = 0;
        while dependency < entry.depends_on.len() {
            let mut found = false;
            let mut earlier = 0;
            while earlier < index {
                found |= same(REGISTRY[earlier].name, entry.depends_on[dependency]);
                earlier += 1;
            }
            assert!(found, "a pipeline depends on one that is not listed before it");
            dependency += 1;
        }
        index += 1;
    }
};

/// The entry named `name`.
pub fn entry(name: &str) -> Option<&'static PipelineEntry> {
    REGISTRY.iter().find(|entry| entry.name == name)
}

/// Every entity the pipelines load, in registry order.
pub fn entities() -> impl Iterator<Item = &'static Entity> {
    REGISTRY.iter().flat_map(|entry| entry.entities.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Entity names are unique across pipelines, so `count <entity>` means one table.
    #[test]
    fn entity_names_are_unique() {
        let mut names: Vec<_> = entities().map(|entity| entity.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }

    // Every entity names a table the schema declares.
    #[test]
    fn entities_name_real_tables() {
        let schema = include_str!("../db/schema.rs");
        for entity in entities() {
            assert!(schema.contains(&format!("    {} (", entity.table)), "{} has no table", entity.table);
        }
    }

    // The tent opens on Wednesdays in game time; every other default is the server's zone.
    #[test]
    fn only_the_tent_has_its_own_time_zone() {
        let zoned: Vec<_> = REGISTRY.iter().filter(|entry| entry.default_time_zone.is_some()).map(|e| e.name).collect();
        assert_eq!(zoned, [tent::NAME]);
        assert_eq!(entry(tent::NAME).and_then(|entry| entry.default_time_zone), Some("America/Chicago"));
    }
}
