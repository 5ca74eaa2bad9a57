//! What every source pipeline shares: the [`source::Source`] trait and its generic chain, the
//! generic [`table`] loader, fetching with a fingerprint and the delete guard ([`common`]), HTML
//! reading ([`html`], tables by their headers in [`header_table`], text as the page shows it in
//! [`page_text`]), name resolution ([`names`]) and per-pipeline settings. Nothing here knows a
//! specific pipeline; the pipelines build on it.

pub mod common;
pub mod header_table;
pub mod html;
pub mod names;
pub mod page_text;
pub mod page_worker;
pub mod settings;
pub mod source;
pub mod table;

use std::sync::Arc;

use hayloft_actors::events::EventBus;

use crate::db::outbox::Announcer;
use crate::db::Database;
use crate::upstream::Upstream;
use settings::PipelineSettings;

/// What a pipeline's builder is handed: the shared parts and its own settings, nothing more.
pub struct BuildParts<'a> {
    /// The name it runs under: its registry name, or a copy's (see
    /// [`settings::PipelineConfig::copies`]).
    pub name: &'static str,
    pub db: &'a Database,
    pub upstream: &'a Upstream,
    pub settings: &'a PipelineSettings,
    /// Who decides what a load's changes announce; `None`: nothing is announced.
    pub announcer: Option<Arc<dyn Announcer>>,
    /// Where a fan-out page's changes are published when it commits.
    pub events: &'a EventBus,
}
