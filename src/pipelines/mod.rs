//! The pipelines this build ships, one module per upstream source, and their wiring into the
//! engine: each becomes a supervised extractor → transformer → loader chain with a schedule.
//!
//! `items` has its own modules (it is the hub, with the most columns and self references, and its
//! own fetch and parse); every other source implements [`shared::source::Source`]. All of them load
//! through the generic [`shared::table`] loader.

pub mod cards;
pub mod community;
pub mod demo;
pub mod exchange;
pub mod gallery;
pub mod item_pages;
pub mod items;
pub mod locations;
pub mod npc_pages;
pub mod npcs;
pub mod passwords;
pub mod pets;
pub mod quests;
pub mod registry;
pub mod shared;
pub mod tent;
pub mod tower;
pub mod updates;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle};
use hayloft_actors::schedule::Schedule;
use hayloft_actors::scheduler::ScheduledPipeline;
use hayloft_actors::supervisor::ChildSpec;

use crate::db::outbox::Announcer;
use crate::db::Database;
use crate::upstream::Upstream;
pub use registry::{entry, named, named_among, named_in, nearest, with_demo_copies, PipelineEntry, KNOWN, REGISTRY};
use shared::page_worker::PageHandler;
use shared::settings::PipelineSettings;
use shared::BuildParts;

/// One pipeline's settings and resolved schedule, as the application read them.
#[derive(Debug, Clone)]
pub struct PipelineSetup {
    pub settings: PipelineSettings,
    pub schedule: Schedule,
}

/// The pipelines of this process, ready to be put under a supervisor.
pub struct Built {
    pub specs: Vec<ChildSpec>,
    pub handles: BTreeMap<String, PipelineHandle>,
    pub scheduled: Vec<ScheduledPipeline>,
    /// How this node works on each fan-out source's pages, for its page worker.
    pub pages: Rc<HashMap<&'static str, Rc<dyn PageHandler>>>,
}

/// Builds every pipeline of `entries` (the [`REGISTRY`], with copies of the demo pipeline when
/// configured: see [`with_demo_copies`]), each with its own setup.
pub fn build_all<E>(
    entries: &[PipelineEntry],
    db: &Database,
    upstream: &Upstream,
    announcer: Option<Arc<dyn Announcer>>,
    deps: &PipelineDeps,
    mut setup: impl FnMut(&PipelineEntry) -> Result<PipelineSetup, E>,
) -> Result<Built, E> {
    let mut built = Built { specs: Vec::new(), handles: BTreeMap::new(), scheduled: Vec::new(), pages: Rc::default() };
    let mut pages = HashMap::new();
    for entry in entries {
        let PipelineSetup { settings, schedule } = setup(entry)?;
        let parts = BuildParts {
            name: entry.name,
            db,
            upstream,
            settings: &settings,
            announcer: announcer.clone(),
            events: &deps.events,
        };
        let (spec, handle) = (entry.build)(&parts, deps.clone());
        let misfire = settings.options.misfire.unwrap_or_default();
        built.scheduled.push(ScheduledPipeline { schedule, misfire, handle: handle.clone() });
        built.specs.push(spec);
        built.handles.insert(entry.name.to_owned(), handle);
        if let Some(handler) = entry.pages {
            pages.insert(entry.name, handler(&parts));
        }
    }
    built.pages = Rc::new(pages);
    Ok(built)
}
