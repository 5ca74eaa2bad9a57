//! The task ledger on the database: one `runs` row per run.
//!
//! The partial unique index `runs_one_active_per_pipeline` guarantees at most one queued or
//! running row per pipeline; [`SqlLedger::claim`] relies on it, so two processes (say `hayloft
//! serve` and `hayloft run`) can never run one pipeline at the same time.

use hayloft_actors::storage::StorageFailure;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper};
use hayloft_actors::ledger::{
    ClaimRequest, FailureKind, Ledger, LedgerError, OwnerCheck, RunCounts, RunId, RunOutcome, RunRecord, RunStatus,
    Trigger,
};

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
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn lease_until(lease: Duration) -> NaiveDateTime {
    now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(365))
}

fn storage(error: impl std::error::Error + Send + Sync + 'static) -> LedgerError {
    LedgerError::Storage(StorageFailure::new(error))
}

const ACTIVE: [&str; 2] = ["queued", "running"];

/// What a claim found, decided inside its transaction.
enum Claimed {
    Started(Box<RunRow>),
    Busy(RunId),
}

#[derive(Clone)]
pub struct SqlLedger {
    db: Database,
    /// Decides what a run's result announces; without one, nothing is written to the outbox.
    announcer: Option<Arc<dyn Announcer>>,
}

impl SqlLedger {
    pub fn new(db: Database) -> Self {
        Self { db, announcer: None }
    }

    /// Also writes the messages `announcer` wants for each finished run, in the transaction that
    /// records the run's result.
    pub fn with_announcer(mut self, announcer: Option<Arc<dyn Announcer>>) -> Self {
        self.announcer = announcer;
        self
    }

    async fn claim_inner(&self, request: &ClaimRequest<'_>) -> Result<Claimed, DbError> {
        let ClaimRequest { pipeline, trigger, owner, lease } = *request;
        write_transaction!(&self.db, |conn| {
            {
                let active: Option<RunRow> = runs::table
                    .filter(runs::pipeline.eq(pipeline))
                    .filter(runs::status.eq_any(ACTIVE))
                    .select(RunRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let started = match active {
                    Some(run) if run.status == "running" => return Ok(Claimed::Busy(run.id)),
                    Some(queued) => {
                        diesel::update(runs::table.find(queued.id))
                            .set((
                                runs::status.eq("running"),
                                runs::owner.eq(owner),
                                runs::started_at.eq(now()),
                                runs::lease_until.eq(lease_until(lease)),
                            ))
                            .returning(RunRow::as_returning())
                            .get_result(conn)
                            .await?
                    }
                    None => {
                        let new_run = NewRun {
                            pipeline,
                            status: "running",
                            trigger: trigger.as_str(),
                            attempt: 1,
                            owner: Some(owner),
                            queued_at: now(),
                            started_at: Some(now()),
                            lease_until: Some(lease_until(lease)),
                        };
                        diesel::insert_into(runs::table)
                            .values(&new_run)
                            .returning(RunRow::as_returning())
                            .get_result(conn)
                            .await?
                    }
                };
                Ok::<_, DbError>(Claimed::Started(Box::new(started)))
            }
        })
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

    /// Abandons one running row and queues its next attempt, atomically.
    async fn abandon(&self, run: &RunRow) -> Result<bool, DbError> {
        let message = "abandoned: the process running it stopped before it finished";
        write_transaction!(&self.db, |conn| {
            {
                let changed = diesel::update(runs::table.find(run.id).filter(runs::status.eq("running")))
                    .set((runs::status.eq("abandoned"), runs::finished_at.eq(now()), runs::error.eq(message)))
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
                    queued_at: now(),
                    started_at: None,
                    lease_until: None,
                };
                diesel::insert_into(runs::table).values(&next).execute(conn).await?;
                Ok::<_, DbError>(true)
            }
        })
    }
}

fn is_unique_violation(error: &DbError) -> bool {
    matches!(error, DbError::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)))
}

#[async_trait]
impl Ledger for SqlLedger {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<RunRecord, LedgerError> {
        let busy = |run_id| LedgerError::AlreadyRunning { pipeline: request.pipeline.to_owned(), run_id };
        match self.claim_inner(&request).await {
            Ok(Claimed::Started(row)) => Ok(row.into_record()),
            Ok(Claimed::Busy(run_id)) => Err(busy(run_id)),
            // Another process inserted its row between our check and our insert.
            Err(error) if is_unique_violation(&error) => {
                let run_id = self.active_run_id(request.pipeline).await.map_err(storage)?.unwrap_or(0);
                Err(busy(run_id))
            }
            Err(error) => Err(storage(error)),
        }
    }

    async fn renew(&self, run_id: RunId, owner: &str, lease: Duration) -> Result<(), LedgerError> {
        let changed = with_conn!(&self.db, writer, |conn| {
            diesel::update(runs::table.find(run_id).filter(runs::status.eq("running")).filter(runs::owner.eq(owner)))
                .set(runs::lease_until.eq(lease_until(lease)))
                .execute(conn)
                .await
                .map_err(DbError::Query)
        })
        .map_err(storage)?;
        if changed == 0 {
            return Err(self.lost(run_id).await);
        }
        Ok(())
    }

    async fn finish(&self, run_id: RunId, outcome: RunOutcome) -> Result<RunRecord, LedgerError> {
        let counts = outcome.counts;
        let announcer = self.announcer.clone();
        let row: Option<RunRow> = write_transaction!(&self.db, |conn| {
            let finished_at = now();
            let row: Option<RunRow> = diesel::update(runs::table.find(run_id).filter(runs::status.eq("running")))
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

    async fn recover(&self, owner_is_dead: &OwnerCheck) -> Result<Vec<RunRecord>, LedgerError> {
        let running: Vec<RunRow> = with_conn!(&self.db, readers, |conn| {
            runs::table
                .filter(runs::status.eq("running"))
                .select(RunRow::as_select())
                .load(conn)
                .await
                .map_err(DbError::Query)
        })
        .map_err(storage)?;
        let current = now();
        let mut abandoned = Vec::new();
        for run in running {
            let expired = run.lease_until.is_some_and(|until| until < current);
            let dead = run.owner.as_deref().is_some_and(owner_is_dead);
            if (expired || dead) && self.abandon(&run).await.map_err(storage)? {
                let mut record = run.into_record();
                record.status = RunStatus::Abandoned;
                abandoned.push(record);
            }
        }
        Ok(abandoned)
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
