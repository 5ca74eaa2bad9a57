//! The built-in demo pipeline: generates a deterministic set of rows, so the whole machinery
//! (schedule, ledger, stages, change detection, change feed) runs with no upstream at all.
//!
//! Extract produces `rows` records after an optional `delay` (handy to watch a run, or to kill
//! the process in the middle of one); transform validates them; load diffs them against the
//! table in one transaction, writes only what changed and records the change feed beside it.

use std::time::Duration;

use async_trait::async_trait;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable};
use hayloft_actors::ledger::RunCounts;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::storage::StorageFailure;
use hayloft_actors::supervisor::ChildSpec;
use serde::Serialize;

use super::shared::BuildParts;
use crate::db::queries::NewChange;
use crate::db::schema::{change_events, demo_records};
use crate::db::{write_transaction, Database, DbError};
use crate::pipelines::shared::common::{diff_rows, TableCounts, TableDiff};

pub const NAME: &str = "demo";
/// Every ten minutes, at a per-install hashed second and minute offset.
pub const DEFAULT_SCHEDULE: &str = "H H/10 * * * *";
pub const DEFAULT_ROWS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = demo_records)]
pub struct DemoRecord {
    pub id: i64,
    pub name: String,
    pub value: i64,
}

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
    db: Database,
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
        let run_id = run.run_id;
        // A hundred rows: one statement per changed row keeps this example short (the items
        // pipeline shows batched writes).
        let result: Result<TableDiff<DemoRecord, i64>, DbError> = write_transaction!(&self.db, |conn| {
            {
                let stored = demo_records::table.load::<DemoRecord>(conn).await?;
                let diff = diff_rows(NAME, stored, incoming, |record| record.id);
                for record in &diff.upserts {
                    diesel::insert_into(demo_records::table)
                        .values(record)
                        .on_conflict(demo_records::id)
                        .do_update()
                        .set((demo_records::name.eq(&record.name), demo_records::value.eq(record.value)))
                        .execute(conn)
                        .await?;
                }
                if !diff.deletes.is_empty() {
                    diesel::delete(demo_records::table.filter(demo_records::id.eq_any(&diff.deletes)))
                        .execute(conn)
                        .await?;
                }
                for change in &diff.changes {
                    diesel::insert_into(change_events::table)
                        .values(NewChange::from_change(run_id, change))
                        .execute(conn)
                        .await?;
                }
                Ok::<_, DbError>(diff)
            }
        });
        let diff = result.map_err(|error| StageError::Database(StorageFailure::new(error)))?;
        let TableCounts { inserted, updated, deleted, unchanged, .. } = diff.counts;
        Ok(LoadReport {
            counts: RunCounts { inserted, updated, deleted, unchanged },
            changes: diff.changes,
            notes: Vec::new(),
        })
    }
}

pub fn build(parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let settings = &parts.settings.options;
    let extract = Generate { rows: settings.rows.unwrap_or(DEFAULT_ROWS), delay: settings.delay.unwrap_or_default() };
    let validate = Validate { panic_when: settings.panic_when.clone() };
    pipeline(NAME, extract, validate, Store { db: parts.db.clone() }, deps)
}
