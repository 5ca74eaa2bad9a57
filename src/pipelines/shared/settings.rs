//! What a pipeline is configured with: its own `[pipelines.<name>]` section, and the delete
//! guard every load shares. The aggregate configuration holds these; a pipeline is handed only
//! its own [`PipelineSettings`].

use std::path::PathBuf;
use std::time::Duration;

use hayloft_actors::scheduler::MisfirePolicy;
use serde::{Deserialize, Serialize};

use super::common::DeleteGuard;

/// Settings of one pipeline (all optional; each pipeline has its own defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// `false` keeps the pipeline off the schedule (it can still be run by hand).
    pub enabled: Option<bool>,
    /// Cron (with seconds), hashed (`H`), `@every 30s` or `never`.
    pub schedule: Option<String>,
    /// Up to this much stable random delay after each slot.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    pub misfire: Option<MisfirePolicy>,
    /// Time zone for this pipeline's cron fields (default: the global `timezone`).
    pub timezone: Option<String>,
    /// Demo pipeline: how many rows it produces.
    pub rows: Option<u64>,
    /// Demo pipeline: how long its extract step takes (to watch runs, or test crashes).
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    /// Demo pipeline: its transform panics while this file exists (to watch a supervised
    /// restart, and to test one).
    pub panic_when: Option<PathBuf>,
    /// Demo pipeline: how many more pipelines like it to run (`demo_1` … `demo_N`, at most
    /// [`MAX_DEMO_COPIES`]), each with the demo's settings but its own runs, slots and schedule
    /// offset. They load the same rows into the same table; what they exercise is the
    /// scheduler, the ledger and a cluster's claims under many pipelines.
    pub copies: Option<u32>,
}

/// The most copies of the demo pipeline one configuration may ask for.
pub const MAX_DEMO_COPIES: u32 = 100;

/// Everything a pipeline's builder reads from the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineSettings {
    /// Its `[pipelines.<name>]` section (defaults when absent).
    pub options: PipelineConfig,
    pub delete_guard: DeleteGuard,
}
