//! The built-in demo pipeline: generates a deterministic set of rows, so the whole machinery
//! (schedule, ledger, stages, change detection, change feed) runs with no upstream at all.
//!
//! Extract produces `rows` records after an optional `delay` (handy to watch a run, or to kill
//! the process in the middle of one); transform validates them; load diffs them against the
//! table in one transaction, writes only what changed and records the change feed beside it.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable};
use hayloft_actors::events::{Change, ChangeOp};
use hayloft_actors::ledger::RunCounts;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::supervisor::ChildSpec;

use crate::config::Config;
use crate::db::queries::NewChange;
use crate::db::schema::{change_events, demo_records};
use crate::db::{write_transaction, Database, DbError};

pub const NAME: &str = "demo";
/// Every ten minutes, at a per-install hashed second and minute offset.
pub const DEFAULT_SCHEDULE: &str = "H H/10 * * * *";
pub const DEFAULT_ROWS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
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

pub struct Validate;

impl Transform for Validate {
    type Input = Vec<DemoRecord>;
    type Output = Vec<DemoRecord>;

    fn transform(
        &self,
        input: Vec<DemoRecord>,
        _run: &RunContext,
        counters: &StageCounters,
    ) -> Result<Vec<DemoRecord>, StageError> {
        let (valid, invalid): (Vec<_>, Vec<_>) = input.into_iter().partition(|record| !record.name.trim().is_empty());
        counters.dropped(invalid.len() as u64);
        counters.emitted(valid.len() as u64);
        Ok(valid)
    }
}

pub struct Store {
    db: Database,
}

/// The writes one load needs, computed from the stored rows and the new ones.
#[derive(Default)]
struct Plan {
    inserts: Vec<DemoRecord>,
    updates: Vec<DemoRecord>,
    deletes: Vec<i64>,
    changes: Vec<Change>,
    unchanged: i64,
}

fn plan(stored: Vec<DemoRecord>, incoming: Vec<DemoRecord>) -> Plan {
    let mut stored: HashMap<i64, DemoRecord> = stored.into_iter().map(|record| (record.id, record)).collect();
    let mut plan = Plan::default();
    let change = |key: i64, op, fields: Vec<&str>| Change {
        entity: NAME.to_owned(),
        key: key.to_string(),
        op,
        fields: fields.into_iter().map(str::to_owned).collect(),
    };
    for record in incoming {
        match stored.remove(&record.id) {
            None => {
                plan.changes.push(change(record.id, ChangeOp::Insert, vec![]));
                plan.inserts.push(record);
            }
            Some(old) if old == record => plan.unchanged += 1,
            Some(old) => {
                let mut fields = Vec::new();
                if old.name != record.name {
                    fields.push("name");
                }
                if old.value != record.value {
                    fields.push("value");
                }
                plan.changes.push(change(record.id, ChangeOp::Update, fields));
                plan.updates.push(record);
            }
        }
    }
    let mut gone: Vec<i64> = stored.into_keys().collect();
    gone.sort_unstable();
    for id in &gone {
        plan.changes.push(change(*id, ChangeOp::Delete, vec![]));
    }
    plan.deletes = gone;
    plan
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
        let result: Result<Plan, DbError> = write_transaction!(&self.db, |conn| {
            {
                let stored = demo_records::table.load::<DemoRecord>(conn).await?;
                let plan = plan(stored, incoming);
                for record in &plan.inserts {
                    diesel::insert_into(demo_records::table).values(record).execute(conn).await?;
                }
                for record in &plan.updates {
                    diesel::update(demo_records::table.find(record.id))
                        .set((demo_records::name.eq(&record.name), demo_records::value.eq(record.value)))
                        .execute(conn)
                        .await?;
                }
                if !plan.deletes.is_empty() {
                    diesel::delete(demo_records::table.filter(demo_records::id.eq_any(&plan.deletes)))
                        .execute(conn)
                        .await?;
                }
                for change in &plan.changes {
                    diesel::insert_into(change_events::table)
                        .values(NewChange::from_change(run_id, change))
                        .execute(conn)
                        .await?;
                }
                Ok::<_, DbError>(plan)
            }
        });
        let plan = result.map_err(|error| StageError::Database(error.to_string()))?;
        Ok(LoadReport {
            counts: RunCounts {
                inserted: plan.inserts.len() as i64,
                updated: plan.updates.len() as i64,
                deleted: plan.deletes.len() as i64,
                unchanged: plan.unchanged,
            },
            changes: plan.changes,
            notes: Vec::new(),
        })
    }
}

pub fn build(config: &Config, db: &Database, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let settings = config.pipeline(NAME);
    let extract = Generate { rows: settings.rows.unwrap_or(DEFAULT_ROWS), delay: settings.delay.unwrap_or_default() };
    pipeline(NAME, extract, Validate, Store { db: db.clone() }, deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, value: i64) -> DemoRecord {
        DemoRecord { id, name: format!("n{id}"), value }
    }

    // The diff writes only what changed and names the changed fields.
    #[test]
    fn plan_writes_only_changes() {
        let plan =
            plan(vec![record(1, 1), record(2, 2), record(3, 3)], vec![record(1, 1), record(2, 20), record(4, 4)]);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.inserts, vec![record(4, 4)]);
        assert_eq!(plan.updates, vec![record(2, 20)]);
        assert_eq!(plan.deletes, vec![3]);
        let update =
            plan.changes.iter().find(|change| change.op == ChangeOp::Update).map(|change| change.fields.clone());
        assert_eq!(update, Some(vec!["value".to_owned()]));
    }
}
