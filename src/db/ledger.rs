//! The task ledger on the database: one `runs` row per run.
//!
//! Coordination between nodes rests on three things any PostgreSQL-compatible engine (and
//! SQLite) has: unique indexes, conditional `UPDATE … RETURNING`, and the database's clock.
//! - The partial unique index `runs_one_active_per_pipeline` allows one queued or running row
//!   per pipeline, and `runs_one_per_slot` one run per schedule slot, whichever node asks.
//! - Taking a queued run is one `UPDATE … WHERE status = 'queued' RETURNING`: of two nodes, one
//!   gets the row and the other nothing.
//! - A claim is (run, node, epoch); renewing, finishing and every load's transaction (see
//!   [`fence`]) update the row only where all three still match, so a node that lost its claim
//!   (paused, partitioned, declared dead) commits nothing.
//! - Liveness is the `nodes` heartbeat on the database's clock ([`super::nodes`]).

use hayloft_actors::storage::StorageFailure;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper};
use hayloft_actors::ledger::{
    Claim, ClaimRequest, FailureKind, Ledger, LedgerError, RunCounts, RunId, RunOutcome, RunRecord, RunStatus, Trigger,
};

use super::clock::{plus, DbClock};
use super::nodes::Liveness;
use super::outbox::{Announcer, NewOutboxRow};
use super::schema::{outbox, runs};
use super::{with_conn, write_transaction, Database, DbError};

/// A `runs` row as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = runs)]
pub struct RunRow {
    pub id: i64,
    pub pipeline: String,
    pub status: String,
    pub trigger: String,
    pub attempt: i32,
    pub owner: Option<String>,
    pub queued_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub lease_until: Option<NaiveDateTime>,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub error: Option<String>,
    /// The run report, one note per line.
    pub notes: String,
    pub failure: Option<String>,
    pub slot: Option<NaiveDateTime>,
    pub epoch: i64,
}

impl RunRow {
    pub fn into_record(self) -> RunRecord {
        RunRecord {
            id: self.id,
            // Both columns are CHECKed or written only by this code; an unknown value would mean
            // a newer binary wrote it, and "failed"/"manual" is the least misleading reading.
            status: self.status.parse().unwrap_or(RunStatus::Failed),
            trigger: self.trigger.parse().unwrap_or(Trigger::Manual),
            pipeline: self.pipeline,
            attempt: self.attempt,
            owner: self.owner,
            slot: self.slot.map(|at| at.and_utc()),
            epoch: self.epoch,
            queued_at: self.queued_at.and_utc(),
            started_at: self.started_at.map(|at| at.and_utc()),
            finished_at: self.finished_at.map(|at| at.and_utc()),
            lease_until: self.lease_until.map(|at| at.and_utc()),
            counts: RunCounts {
                inserted: self.inserted,
                updated: self.updated,
                deleted: self.deleted,
                unchanged: self.unchanged,
            },
            error: self.error,
            // A kind this version does not know still reads as a failure.
            failure: self.failure.map(|kind| kind.parse().unwrap_or(FailureKind::Failed)),
            notes: self.notes.lines().filter(|line| !line.is_empty()).map(str::to_owned).collect(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = runs)]
struct NewRun<'a> {
    pipeline: &'a str,
    status: &'a str,
    trigger: &'a str,
    attempt: i32,
    owner: Option<&'a str>,
    queued_at: NaiveDateTime,
    started_at: Option<NaiveDateTime>,
    lease_until: Option<NaiveDateTime>,
    slot: Option<NaiveDateTime>,
    epoch: i64,
}

/// The rows a claim still holds: `UPDATE`-ing them is the fencing check (it also locks the row
/// on PostgreSQL until the transaction ends, so a takeover waits for a write already under way).
macro_rules! held_by {
    ($claim:expr) => {
        runs::table
            .find($claim.run_id)
            .filter(runs::status.eq("running"))
            .filter(runs::owner.eq(&*$claim.node))
            .filter(runs::epoch.eq($claim.epoch))
    };
}

/// Whether `$pipeline` already has a run for `$slot` (one expression, checked per backend).
macro_rules! slot_taken {
    ($conn:expr, $pipeline:expr, $slot:expr) => {
        runs::table
            .filter(runs::pipeline.eq($pipeline))
            .filter(runs::slot.eq($slot))
            .select(runs::id)
            .first::<RunId>($conn)
            .await
            .optional()
            .map(|found| found.is_some())
    };
}

/// The fencing check at the start of a load's transaction (SQLite, synchronous diesel): fails
/// with [`DbError::ClaimLost`] if `claim` no longer holds its run, so nothing after it commits.
pub fn fence_sqlite(conn: &mut diesel::SqliteConnection, claim: &Claim) -> Result<(), DbError> {
    use diesel::RunQueryDsl as _;
    let held = diesel::update(held_by!(claim)).set(runs::epoch.eq(claim.epoch)).execute(conn)?;
    fenced(held, claim)
}

/// [`fence_sqlite`] for PostgreSQL.
pub async fn fence_postgres(conn: &mut diesel_async::AsyncPgConnection, claim: &Claim) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl as _;
    let held = diesel::update(held_by!(claim)).set(runs::epoch.eq(claim.epoch)).execute(conn).await?;
    fenced(held, claim)
}

/// [`fence_sqlite`] on the asynchronous SQLite connection (inside a `write_transaction!`).
pub async fn fence_sqlite_async(conn: &mut super::SqliteConn, claim: &Claim) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl as _;
    let held = diesel::update(held_by!(claim)).set(runs::epoch.eq(claim.epoch)).execute(conn).await?;
    fenced(held, claim)
}

fn fenced(held: usize, claim: &Claim) -> Result<(), DbError> {
    match held {
        0 => Err(DbError::ClaimLost { run_id: claim.run_id, node: claim.node.to_string(), epoch: claim.epoch }),
        _ => Ok(()),
    }
}

fn storage(error: impl std::error::Error + Send + Sync + 'static) -> LedgerError {
    LedgerError::Storage(StorageFailure::new(error))
}

const ACTIVE: [&str; 2] = ["queued", "running"];

/// What a claim found, decided inside its transaction.
enum Claimed {
    Started(Box<RunRow>),
    Busy(RunId),
    SlotTaken(NaiveDateTime),
    NothingQueued,
}

#[derive(Clone)]
pub struct SqlLedger {
    db: Database,
    /// Decides what a run's result announces; without one, nothing is written to the outbox.
    announcer: Option<Arc<dyn Announcer>>,
    liveness: Liveness,
}

impl SqlLedger {
    pub fn new(db: Database) -> Self {
        Self { db, announcer: None, liveness: Liveness::default() }
    }

    /// Judges nodes dead by this rule (every node of a cluster must use the same).
    pub fn with_liveness(mut self, liveness: Liveness) -> Self {
        self.liveness = liveness;
        self
    }

    /// Also writes the messages `announcer` wants for each finished run, in the transaction that
    /// records the run's result.
    pub fn with_announcer(mut self, announcer: Option<Arc<dyn Announcer>>) -> Self {
        self.announcer = announcer;
        self
    }

    /// Queues a run of `pipeline` for whichever serving node looks first (every node starts the
    /// queued runs it finds within a heartbeat): `hayloft run --no-wait`, which must not run the
    /// pipeline in a process that is about to exit. Refused, like any claim, while a run of the
    /// pipeline is queued or running: the unique index decides, on every node at once.
    pub async fn enqueue(&self, pipeline: &str, trigger: Trigger) -> Result<RunRecord, LedgerError> {
        let queued = write_transaction!(&self.db, |conn| {
            {
                let now = conn.db_now().await?;
                let run = NewRun {
                    pipeline,
                    status: "queued",
                    trigger: trigger.as_str(),
                    attempt: 1,
                    owner: None,
                    queued_at: now,
                    started_at: None,
                    lease_until: None,
                    slot: None,
                    epoch: 0,
                };
                let row: RunRow = diesel::insert_into(runs::table)
                    .values(&run)
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok::<_, DbError>(row)
            }
        });
        match queued {
            Ok(row) => Ok(row.into_record()),
            Err(error) if is_unique_violation(&error) => {
                let run_id = self.active_run_id(pipeline).await.map_err(storage)?.unwrap_or(0);
                Err(LedgerError::AlreadyRunning { pipeline: pipeline.to_owned(), run_id })
            }
            Err(error) => Err(storage(error)),
        }
    }

    /// Fails every run `node` holds, at once, with `why` as the error: Ctrl-C on `hayloft run`.
    /// One conditional statement; the new status is what every later write of those runs is
    /// fenced against, so a load still under way commits nothing. Returns the runs cancelled.
    pub async fn cancel_owned(&self, node: &str, why: &str) -> Result<Vec<RunId>, LedgerError> {
        write_transaction!(&self.db, |conn| {
            {
                let now = conn.db_now().await?;
                let cancelled: Vec<RunId> =
                    diesel::update(runs::table.filter(runs::owner.eq(node)).filter(runs::status.eq("running")))
                        .set((
                            runs::status.eq("failed"),
                            runs::finished_at.eq(now),
                            runs::lease_until.eq(None::<NaiveDateTime>),
                            runs::error.eq(why),
                            runs::failure.eq(hayloft_actors::ledger::FailureKind::Failed.as_str()),
                        ))
                        .returning(runs::id)
                        .get_results(conn)
                        .await?;
                Ok::<_, DbError>(cancelled)
            }
        })
        .map_err(storage)
    }

    async fn claim_inner(&self, request: &ClaimRequest<'_>) -> Result<Claimed, DbError> {
        let ClaimRequest { pipeline, trigger, owner, lease, slot } = *request;
        let slot = slot.map(|slot| slot.naive_utc());
        write_transaction!(&self.db, |conn| {
            {
                let now = conn.db_now().await?;
                // One conditional statement: of two nodes taking the queued row, the second
                // finds it no longer queued and updates nothing.
                let taken: Option<RunRow> =
                    diesel::update(runs::table.filter(runs::pipeline.eq(pipeline)).filter(runs::status.eq("queued")))
                        .set((
                            runs::status.eq("running"),
                            runs::owner.eq(owner),
                            runs::started_at.eq(now),
                            runs::lease_until.eq(plus(now, lease)),
                            runs::epoch.eq(runs::epoch + 1),
                            // Queued rows are retries, which never carry a slot.
                            runs::slot.eq(slot),
                        ))
                        .returning(RunRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?;
                if let Some(taken) = taken {
                    return Ok(Claimed::Started(Box::new(taken)));
                }
                let running: Option<RunId> = runs::table
                    .filter(runs::pipeline.eq(pipeline))
                    .filter(runs::status.eq("running"))
                    .select(runs::id)
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(run_id) = running {
                    return Ok(Claimed::Busy(run_id));
                }
                if trigger == Trigger::Recovery {
                    return Ok(Claimed::NothingQueued);
                }
                if let Some(slot) = slot {
                    if slot_taken!(conn, pipeline, slot)? {
                        return Ok(Claimed::SlotTaken(slot));
                    }
                }
                let new_run = NewRun {
                    pipeline,
                    status: "running",
                    trigger: trigger.as_str(),
                    attempt: 1,
                    owner: Some(owner),
                    queued_at: now,
                    started_at: Some(now),
                    lease_until: Some(plus(now, lease)),
                    slot,
                    epoch: 1,
                };
                let started = diesel::insert_into(runs::table)
                    .values(&new_run)
                    .returning(RunRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok::<_, DbError>(Claimed::Started(Box::new(started)))
            }
        })
    }

    /// Why an insert hit a unique index: the slot ran meanwhile, or another run is active.
    async fn refusal(&self, request: &ClaimRequest<'_>) -> Result<LedgerError, DbError> {
        if let Some(slot) = request.slot {
            let taken = with_conn!(&self.db, readers, |conn| slot_taken!(conn, request.pipeline, slot.naive_utc())
                .map_err(DbError::Query))?;
            if taken {
                return Ok(LedgerError::SlotTaken { pipeline: request.pipeline.to_owned(), slot });
            }
        }
        let run_id = self.active_run_id(request.pipeline).await?.unwrap_or(0);
        Ok(LedgerError::AlreadyRunning { pipeline: request.pipeline.to_owned(), run_id })
    }

    async fn active_run_id(&self, pipeline: &str) -> Result<Option<RunId>, DbError> {
        with_conn!(&self.db, readers, |conn| {
            runs::table
                .filter(runs::pipeline.eq(pipeline))
                .filter(runs::status.eq_any(ACTIVE))
                .select(runs::id)
                .first(conn)
                .await
                .optional()
                .map_err(DbError::Query)
        })
    }

    async fn status_of(&self, run_id: RunId) -> Result<Option<String>, DbError> {
        with_conn!(&self.db, readers, |conn| {
            runs::table.find(run_id).select(runs::status).first(conn).await.optional().map_err(DbError::Query)
        })
    }

    async fn lost(&self, run_id: RunId) -> LedgerError {
        match self.status_of(run_id).await {
            Ok(Some(status)) => LedgerError::LeaseLost { run_id, status: status.parse().unwrap_or(RunStatus::Failed) },
            Ok(None) => LedgerError::RunNotFound(run_id),
            Err(error) => storage(error),
        }
    }

    /// Abandons one running row (if it still has the epoch seen) and queues its next attempt,
    /// atomically.
    async fn abandon(&self, run: &RunRow, why: &str) -> Result<bool, DbError> {
        let message = format!("abandoned: {why}");
        write_transaction!(&self.db, |conn| {
            {
                let now = conn.db_now().await?;
                let changed = diesel::update(
                    runs::table.find(run.id).filter(runs::status.eq("running")).filter(runs::epoch.eq(run.epoch)),
                )
                .set((
                    runs::status.eq("abandoned"),
                    runs::finished_at.eq(now),
                    runs::lease_until.eq(None::<NaiveDateTime>),
                    runs::error.eq(&message),
                ))
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Ok(false); // finished or recovered meanwhile
                }
                let next = NewRun {
                    pipeline: &run.pipeline,
                    status: "queued",
                    trigger: Trigger::Recovery.as_str(),
                    attempt: run.attempt + 1,
                    owner: None,
                    queued_at: now,
                    started_at: None,
                    lease_until: None,
                    slot: None,
                    epoch: 0,
                };
                diesel::insert_into(runs::table).values(&next).execute(conn).await?;
                Ok::<_, DbError>(true)
            }
        })
    }

    async fn running(&self) -> Result<Vec<RunRow>, DbError> {
        with_conn!(&self.db, readers, |conn| {
            runs::table
                .filter(runs::status.eq("running"))
                .select(RunRow::as_select())
                .load(conn)
                .await
                .map_err(DbError::Query)
        })
    }

    async fn abandon_all(&self, runs: Vec<(RunRow, String)>) -> Result<Vec<RunRecord>, LedgerError> {
        let mut abandoned = Vec::new();
        for (run, why) in runs {
            if self.abandon(&run, &why).await.map_err(storage)? {
                let mut record = run.into_record();
                record.status = RunStatus::Abandoned;
                abandoned.push(record);
            }
        }
        Ok(abandoned)
    }
}

fn is_unique_violation(error: &DbError) -> bool {
    matches!(error, DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
}

#[async_trait]
impl Ledger for SqlLedger {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<RunRecord, LedgerError> {
        let pipeline = request.pipeline.to_owned();
        match self.claim_inner(&request).await {
            Ok(Claimed::Started(row)) => Ok(row.into_record()),
            Ok(Claimed::Busy(run_id)) => Err(LedgerError::AlreadyRunning { pipeline, run_id }),
            Ok(Claimed::SlotTaken(slot)) => Err(LedgerError::SlotTaken { pipeline, slot: slot.and_utc() }),
            Ok(Claimed::NothingQueued) => Err(LedgerError::NothingQueued(pipeline)),
            // Another node inserted its row between our check and our insert.
            Err(error) if is_unique_violation(&error) => Err(self.refusal(&request).await.map_err(storage)?),
            Err(error) => Err(storage(error)),
        }
    }

    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<(), LedgerError> {
        let changed = with_conn!(&self.db, writer, |conn| {
            let now = conn.db_now().await?;
            diesel::update(held_by!(claim))
                .set(runs::lease_until.eq(plus(now, lease)))
                .execute(conn)
                .await
                .map_err(DbError::Query)
        })
        .map_err(storage)?;
        if changed == 0 {
            return Err(self.lost(claim.run_id).await);
        }
        Ok(())
    }

    async fn finish(&self, claim: &Claim, outcome: RunOutcome) -> Result<RunRecord, LedgerError> {
        let counts = outcome.counts;
        let announcer = self.announcer.clone();
        let run_id = claim.run_id;
        let row: Option<RunRow> = write_transaction!(&self.db, |conn| {
            let finished_at = conn.db_now().await?;
            let row: Option<RunRow> = diesel::update(held_by!(claim))
                .set((
                    runs::status.eq(outcome.status.as_str()),
                    runs::finished_at.eq(finished_at),
                    runs::lease_until.eq(None::<NaiveDateTime>),
                    runs::inserted.eq(counts.inserted),
                    runs::updated.eq(counts.updated),
                    runs::deleted.eq(counts.deleted),
                    runs::unchanged.eq(counts.unchanged),
                    runs::error.eq(outcome.error.as_deref()),
                    runs::failure.eq(outcome.failure.map(FailureKind::as_str)),
                    runs::notes.eq(outcome.notes.join("\n")),
                ))
                .returning(RunRow::as_returning())
                .get_result(conn)
                .await
                .optional()?;
            // The announcement commits with the result, or neither does: a crash can never
            // leave a failed run that nobody will hear about. (Changes are announced by the
            // load that wrote them, in its own transaction.)
            if let (Some(announcer), Some(row)) = (announcer.as_deref(), row.as_ref()) {
                let entries = announcer.on_result(&row.clone().into_record());
                for outbox_row in NewOutboxRow::all_due_now(entries, Some(run_id), finished_at) {
                    diesel::insert_into(outbox::table).values(&outbox_row).execute(conn).await?;
                }
            }
            Ok::<_, DbError>(row)
        })
        .map_err(storage)?;
        match row {
            Some(row) => Ok(row.into_record()),
            None => Err(self.lost(run_id).await),
        }
    }

    async fn recover(&self) -> Result<Vec<RunRecord>, LedgerError> {
        let (now, live) = super::nodes::live_nodes(&self.db, self.liveness).await.map_err(storage)?;
        let lost: Vec<(RunRow, String)> = self
            .running()
            .await
            .map_err(storage)?
            .into_iter()
            .filter_map(|run| {
                let owner = run.owner.clone().unwrap_or_default();
                let why = if !live.contains(&owner) {
                    format!("node {owner} stopped sending heartbeats before the run finished")
                } else if run.lease_until.is_some_and(|until| until < now) {
                    format!("node {owner} stopped renewing the run's lease")
                } else {
                    return None;
                };
                Some((run, why))
            })
            .collect();
        self.abandon_all(lost).await
    }

    async fn hand_over(&self, node: &str) -> Result<Vec<RunRecord>, LedgerError> {
        let mine: Vec<(RunRow, String)> = self
            .running()
            .await
            .map_err(storage)?
            .into_iter()
            .filter(|run| run.owner.as_deref() == Some(node))
            // It stopped, restarted under its id, or found it had been counted dead.
            .map(|run| (run, format!("node {node} gave the run up before it finished")))
            .collect();
        self.abandon_all(mine).await
    }

    async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, LedgerError> {
        let row: Option<RunRow> = with_conn!(&self.db, readers, |conn| {
            runs::table
                .filter(runs::pipeline.eq(pipeline))
                .filter(runs::status.ne("queued"))
                .order(runs::id.desc())
                .select(RunRow::as_select())
                .first(conn)
                .await
                .optional()
                .map_err(DbError::Query)
        })
        .map_err(storage)?;
        Ok(row.map(RunRow::into_record))
    }

    async fn queued_pipelines(&self) -> Result<Vec<String>, LedgerError> {
        with_conn!(&self.db, readers, |conn| {
            runs::table
                .filter(runs::status.eq("queued"))
                .select(runs::pipeline)
                .distinct()
                .load(conn)
                .await
                .map_err(DbError::Query)
        })
        .map_err(storage)
    }
}
