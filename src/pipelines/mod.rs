//! The pipelines this build ships, one module per upstream source, and their wiring into the
//! engine: each becomes a supervised extractor → transformer → loader chain with a schedule.
//!
//! `items` has its own modules (it is the hub, with the most columns and self references); every
//! other source implements [`source::Source`] and is loaded by the generic [`table`] loader.

pub mod cards;
pub mod common;
pub mod community;
pub mod demo;
pub mod exchange;
pub mod gallery;
pub mod html;
pub mod item_pages;
pub mod items;
pub mod locations;
pub mod names;
pub mod npc_pages;
pub mod npcs;
pub mod passwords;
pub mod source;
pub mod table;
pub mod tent;
pub mod tower;
pub mod updates;

use std::collections::BTreeMap;

use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle};
use hayloft_actors::scheduler::ScheduledPipeline;
use hayloft_actors::supervisor::ChildSpec;

use crate::config::{Config, ConfigError};
use crate::db::Database;
use crate::upstream::Upstream;
use source::Source;

/// Every pipeline name, in the order `run all` uses: items first (everything refers to them),
/// NPCs before the NPC pages merged into them, locations before item pages naming them.
pub const KNOWN: [&str; 14] = [
    items::NAME,
    npcs::NAME,
    npc_pages::NAME,
    tower::NAME,
    locations::NAME,
    item_pages::NAME,
    community::NAME,
    exchange::NAME,
    cards::NAME,
    tent::NAME,
    updates::NAME,
    passwords::NAME,
    gallery::NAME,
    demo::NAME,
];

/// The schedule a pipeline runs on when the configuration names none.
pub fn default_schedule(name: &str) -> &'static str {
    match name {
        items::NAME => items::DEFAULT_SCHEDULE,
        npcs::NAME => npcs::Npcs::DEFAULT_SCHEDULE,
        npc_pages::NAME => npc_pages::NpcPages::DEFAULT_SCHEDULE,
        tower::NAME => tower::Tower::DEFAULT_SCHEDULE,
        locations::NAME => locations::Locations::DEFAULT_SCHEDULE,
        item_pages::NAME => item_pages::ItemPages::DEFAULT_SCHEDULE,
        community::NAME => community::Community::DEFAULT_SCHEDULE,
        exchange::NAME => exchange::Exchange::DEFAULT_SCHEDULE,
        cards::NAME => cards::Cards::DEFAULT_SCHEDULE,
        tent::NAME => tent::Tent::DEFAULT_SCHEDULE,
        updates::NAME => updates::Updates::DEFAULT_SCHEDULE,
        passwords::NAME => passwords::Passwords::DEFAULT_SCHEDULE,
        gallery::NAME => gallery::Gallery::DEFAULT_SCHEDULE,
        demo::NAME => demo::DEFAULT_SCHEDULE,
        _ => "never",
    }
}

/// The time zone a pipeline's default schedule is meant in, when it is not the server's: the
/// tent opens on Wednesdays in game time.
pub fn default_time_zone(name: &str) -> Option<&'static str> {
    (name == tent::NAME).then_some("America/Chicago")
}

/// The pipelines of this process, ready to be put under a supervisor.
pub struct Built {
    pub specs: Vec<ChildSpec>,
    pub handles: BTreeMap<String, PipelineHandle>,
    pub scheduled: Vec<ScheduledPipeline>,
}

/// Builds every known pipeline from the configuration.
pub fn build_all(
    config: &Config,
    db: &Database,
    upstream: &Upstream,
    deps: &PipelineDeps,
) -> Result<Built, ConfigError> {
    let mut built = Built { specs: Vec::new(), handles: BTreeMap::new(), scheduled: Vec::new() };
    for name in KNOWN {
        let deps = deps.clone();
        let (spec, handle) = match name {
            items::NAME => items::build(config, db, upstream, deps),
            npcs::NAME => source::build(npcs::Npcs, config, db, upstream, deps),
            npc_pages::NAME => source::build(npc_pages::NpcPages, config, db, upstream, deps),
            tower::NAME => source::build(tower::Tower, config, db, upstream, deps),
            locations::NAME => source::build(locations::Locations, config, db, upstream, deps),
            item_pages::NAME => source::build(item_pages::ItemPages, config, db, upstream, deps),
            community::NAME => source::build(community::Community, config, db, upstream, deps),
            exchange::NAME => source::build(exchange::Exchange, config, db, upstream, deps),
            cards::NAME => source::build(cards::Cards, config, db, upstream, deps),
            tent::NAME => source::build(tent::Tent, config, db, upstream, deps),
            updates::NAME => source::build(updates::Updates, config, db, upstream, deps),
            passwords::NAME => source::build(passwords::Passwords, config, db, upstream, deps),
            gallery::NAME => source::build(gallery::Gallery, config, db, upstream, deps),
            _ => demo::build(config, db, deps),
        };
        let schedule = config.pipeline_schedule(name, default_schedule(name))?;
        let misfire = config.pipeline(name).misfire.unwrap_or_default();
        built.scheduled.push(ScheduledPipeline { schedule, misfire, handle: handle.clone() });
        built.specs.push(spec);
        built.handles.insert(name.to_owned(), handle);
    }
    Ok(built)
}
