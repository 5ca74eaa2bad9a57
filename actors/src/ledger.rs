//! The task ledger interface: every run is a row that is claimed, leased, then finished.
//!
//! `queued → running → succeeded | failed | abandoned`. The engine only speaks to this trait; the
//! application implements it on its database. Because the row is written before any work starts
//! and finished after the load commits, a process that dies mid-run leaves a `running` row behind:
//! [`Ledger::recover`] marks such rows `abandoned` and queues a fresh attempt, which is how work
//! converges after a crash.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub type RunId = i64;

/// Tells whether the process named in a lease (`host:pid`) is gone.
pub type OwnerCheck = dyn for<'a> Fn(&'a str) -> bool + Send + Sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Abandoned,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Queued, RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Abandoned];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Abandoned)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown run status {text:?}"))
    }
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A schedule slot came due.
    Schedule,
    /// A slot was missed while the process was down; fired once at start-up.
    Misfire,
    /// An operator asked for it (CLI, SSH, GraphQL, a button).
    Manual,
    /// A fresh attempt of a run abandoned by a dead process.
    Recovery,
}

impl Trigger {
    pub const ALL: [Trigger; 4] = [Trigger::Schedule, Trigger::Misfire, Trigger::Manual, Trigger::Recovery];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Misfire => "misfire",
            Trigger::Manual => "manual",
            Trigger::Recovery => "recovery",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|trigger| trigger.as_str() == text)
            .ok_or_else(|| format!("unknown trigger {text:?}"))
    }
}

/// Why a run failed, as stored with it: notifications, status and the dashboard tell a refusal
/// from a crash by this, never by the wording of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The load was refused on purpose (the delete guard); nothing was written.
    Refused,
    /// A stage failed: upstream, bad input, the database.
    Failed,
    /// The run took longer than its timeout.
    TimedOut,
    /// A stage or the runner panicked.
    Panicked,
}

impl FailureKind {
    pub const ALL: [FailureKind; 4] =
        [FailureKind::Refused, FailureKind::Failed, FailureKind::TimedOut, FailureKind::Panicked];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Failed => "failed",
            FailureKind::TimedOut => "timed_out",
            FailureKind::Panicked => "panicked",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| format!("unknown failure kind {text:?}"))
    }
}

/// Rows a load touched. Counters are 64-bit: a large table reloaded often overflows 32 bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
}

impl RunCounts {
    pub fn written(&self) -> i64 {
        self.inserted + self.updated + self.deleted
    }
}

/// One row of the ledger. Its JSON form is flat (`run_id`, `status`, `inserted`...), the same
/// in every front door.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub pipeline: String,
    pub status: RunStatus,
    pub trigger: Trigger,
    pub attempt: i32,
    pub owner: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub counts: RunCounts,
    pub error: Option<String>,
    /// Set exactly when the run failed.
    pub failure: Option<FailureKind>,
    /// The run report: what did not fail the run but deserves a look (skipped rows, dangling
    /// references, unresolved names).
    pub notes: Vec<String>,
}

impl Serialize for RunRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut run = serializer.serialize_struct("RunRecord", 16)?;
        run.serialize_field("run_id", &self.id)?;
        run.serialize_field("pipeline", &self.pipeline)?;
        run.serialize_field("status", &self.status)?;
        run.serialize_field("trigger", &self.trigger)?;
        run.serialize_field("attempt", &self.attempt)?;
        run.serialize_field("inserted", &self.counts.inserted)?;
        run.serialize_field("updated", &self.counts.updated)?;
        run.serialize_field("deleted", &self.counts.deleted)?;
        run.serialize_field("unchanged", &self.counts.unchanged)?;
        run.serialize_field("queued_at", &self.queued_at)?;
        run.serialize_field("started_at", &self.started_at)?;
        run.serialize_field("finished_at", &self.finished_at)?;
        run.serialize_field("duration_ms", &self.duration_ms())?;
        run.serialize_field("error", &self.error)?;
        run.serialize_field("failure", &self.failure)?;
        run.serialize_field("notes", &self.notes)?;
        run.end()
    }
}

impl RunRecord {
    pub fn duration_ms(&self) -> Option<i64> {
        match (self.started_at, self.finished_at) {
            (Some(started), Some(finished)) => Some((finished - started).num_milliseconds()),
            _ => None,
        }
    }
}

/// How a run ended, as the pipeline reports it to the ledger.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub counts: RunCounts,
    pub error: Option<String>,
    /// Why it failed; `None` for a success.
    pub failure: Option<FailureKind>,
    pub notes: Vec<String>,
}

impl RunOutcome {
    pub fn succeeded(counts: RunCounts, notes: Vec<String>) -> Self {
        Self { status: RunStatus::Succeeded, counts, error: None, failure: None, notes }
    }

    pub fn failed(kind: FailureKind, error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Failed,
            counts: RunCounts::default(),
            error: Some(error.into()),
            failure: Some(kind),
            notes: Vec::new(),
        }
    }
}

/// Who is asking: identifies the process holding a lease.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub pipeline: &'a str,
    pub trigger: Trigger,
    pub owner: &'a str,
    pub lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("pipeline {pipeline} is already running (run {run_id})")]
    AlreadyRunning { pipeline: String, run_id: RunId },
    #[error("run {0} not found")]
    RunNotFound(RunId),
    #[error("run {run_id} is no longer held by this process (it is {status})")]
    LeaseLost { run_id: RunId, status: RunStatus },
    /// The storage behind the ledger failed; its error is kept as the source.
    #[error("ledger storage failed: {0}")]
    Storage(#[source] crate::storage::StorageFailure),
}

#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Starts a run of `pipeline`: takes over its queued row if there is one, otherwise inserts a
    /// new row, and marks it `running` with a lease. At most one queued-or-running row exists per
    /// pipeline (the storage enforces it), so two processes can never run one pipeline at once.
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<RunRecord, LedgerError>;

    /// Extends the lease of a running run; fails if the run was taken away (marked abandoned).
    async fn renew(&self, run_id: RunId, owner: &str, lease: Duration) -> Result<(), LedgerError>;

    /// Records how the run ended (with its change feed) in one transaction.
    async fn finish(&self, run_id: RunId, outcome: RunOutcome) -> Result<RunRecord, LedgerError>;

    /// Marks `running` rows whose owner is gone (`owner_is_dead`) or whose lease expired as
    /// `abandoned`, and queues a fresh attempt of each. Returns the abandoned rows.
    async fn recover(&self, owner_is_dead: &OwnerCheck) -> Result<Vec<RunRecord>, LedgerError>;

    /// The latest run of a pipeline, whatever its status.
    async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, LedgerError>;

    /// Pipelines with a queued run waiting to be picked up.
    async fn queued_pipelines(&self) -> Result<Vec<String>, LedgerError>;
}
