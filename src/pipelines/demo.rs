//! The built-in demo pipeline: generates a deterministic set of rows, so the whole machinery
//! (schedule, ledger, stages, change detection, change feed) runs with no upstream at all.
//!
//! Extract produces `rows` records after an optional `delay` (handy to watch a run, or to kill
//! the process in the middle of one); transform validates them; load is the generic one
//! ([`load_dataset`]): diffed against the table, only what changed written, with the change feed
//! and the announcement of the changes, in one transaction.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::supervisor::ChildSpec;
use serde::Serialize;

use super::shared::common::{fingerprint, DeleteGuard};
use super::shared::table::{load_dataset, stored_table, Dataset, DeletePolicy};
use super::shared::BuildParts;
use crate::db::outbox::Announcer;
use crate::db::schema::demo_records;
use crate::db::Database;

pub const NAME: &str = "demo";
/// Every ten minutes, at a per-install hashed second and minute offset.
pub const DEFAULT_SCHEDULE: &str = "H H/10 * * * *";
pub const DEFAULT_ROWS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = demo_records)]
pub struct DemoRecord {
    pub id: i64,
    pub name: String,
    pub value: i64,
}

stored_table!(DemoRecord, demo_records, "demo", key(id), update(name, value), label name);

pub struct Generate {
    rows: u64,
    delay: Duration,
}

#[async_trait(?Send)]
impl Extract for Generate {
    type Output = Vec<DemoRecord>;

    async fn extract(&self, _run: &RunContext, counters: &StageCounters) -> Result<Vec<DemoRecord>, StageError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let rows: Vec<DemoRecord> = (1..=self.rows as i64)
            .map(|id| DemoRecord { id, name: format!("Sample {id:04}"), value: (id * 7919) % 1000 })
            .collect();
        counters.emitted(rows.len() as u64);
        Ok(rows)
    }
}

pub struct Validate {
    /// While this file exists, the transform panics: a way to watch supervision at work.
    panic_when: Option<std::path::PathBuf>,
}

impl Transform for Validate {
    type Input = Vec<DemoRecord>;
    type Output = Vec<DemoRecord>;

    fn transform(
        &self,
        input: Vec<DemoRecord>,
        _run: &RunContext,
        counters: &StageCounters,
    ) -> Result<Vec<DemoRecord>, StageError> {
        if let Some(path) = self.panic_when.as_ref().filter(|path| path.exists()) {
            panic!("demo transform asked to panic ({} exists)", path.display());
        }
        let (valid, invalid): (Vec<_>, Vec<_>) = input.into_iter().partition(|record| !record.name.trim().is_empty());
        counters.dropped(invalid.len() as u64);
        counters.emitted(valid.len() as u64);
        Ok(valid)
    }
}

pub struct Store {
    /// `demo`, or the name of one of its copies.
    name: &'static str,
    db: Database,
    announcer: Option<Arc<dyn Announcer>>,
}

#[async_trait(?Send)]
impl Load for Store {
    type Input = Vec<DemoRecord>;

    async fn load(
        &self,
        incoming: Vec<DemoRecord>,
        run: &RunContext,
        _counters: &StageCounters,
    ) -> Result<LoadReport, StageError> {
        // The same load every source uses. The rows are generated, so the delete guard has
        // nothing to protect: shrinking `rows` deletes the rest.
        let body = serde_json::to_vec(&incoming).map_err(|error| StageError::BadInput(error.to_string()))?;
        let dataset = Dataset::new().table(incoming, DeletePolicy::Replace);
        let announcer = self.announcer.as_deref();
        load_dataset(&self.db, dataset, fingerprint(&body, 1), run, &DeleteGuard::OFF, self.name, announcer).await
    }
}

pub fn build(parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let settings = &parts.settings.options;
    let extract = Generate { rows: settings.rows.unwrap_or(DEFAULT_ROWS), delay: settings.delay.unwrap_or_default() };
    let validate = Validate { panic_when: settings.panic_when.clone() };
    let store = Store { name: parts.name, db: parts.db.clone(), announcer: parts.announcer.clone() };
    pipeline(parts.name, extract, validate, store, deps)
}
