//! The pipelines this build ships, one module per upstream source, and their wiring into the
//! engine: each becomes a supervised extractor → transformer → loader chain with a schedule.

pub mod common;
pub mod demo;
pub mod items;

use std::collections::BTreeMap;

use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle};
use hayloft_actors::scheduler::ScheduledPipeline;
use hayloft_actors::supervisor::ChildSpec;

use crate::config::{Config, ConfigError};
use crate::db::Database;
use crate::upstream::Upstream;

/// Every pipeline name, in the order `run all` would use (dependencies first).
pub const KNOWN: [&str; 2] = [items::NAME, demo::NAME];

/// The schedule a pipeline runs on when the configuration names none.
pub fn default_schedule(name: &str) -> &'static str {
    match name {
        items::NAME => items::DEFAULT_SCHEDULE,
        demo::NAME => demo::DEFAULT_SCHEDULE,
        _ => "never",
    }
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
        let (spec, handle) = match name {
            items::NAME => items::build(config, db, upstream, deps.clone()),
            _ => demo::build(config, db, deps.clone()),
        };
        let schedule = config.pipeline_schedule(name, default_schedule(name))?;
        let misfire = config.pipeline(name).misfire.unwrap_or_default();
        built.scheduled.push(ScheduledPipeline { schedule, misfire, handle: handle.clone() });
        built.specs.push(spec);
        built.handles.insert(name.to_owned(), handle);
    }
    Ok(built)
}
