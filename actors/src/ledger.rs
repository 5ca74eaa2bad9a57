//! The task ledger interface: every run is a row that is claimed, leased, then finished.
//!
//! `queued → running → succeeded | failed | abandoned`. The engine only speaks to this trait; the
//! application implements it on its database. Because the row is written before any work starts
//! and finished after the load commits, a process that dies mid-run leaves a `running` row behind:
//! [`Ledger::recover`] marks such rows `abandoned` and queues a fresh attempt, which is how work
//! converges after a crash.
//!
//! Several processes (nodes) may share one ledger. A scheduled run names its slot, and a slot
//! runs once whichever node fires it; a claim carries a [`Claim`] (run, node, epoch) that every
//! write of the run presents, so a node that lost its claim commits nothing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub type RunId = i64;

/// What a running run's holder presents with every write: the run, the node holding it and the
/// epoch of its claim. A write whose claim no longer matches the row is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run_id: RunId,
    pub node: std::sync::Arc<str>,
    pub epoch: i64,
}

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
    /// `hayloft import`: records from files (the original system's dumps), not from upstream.
    Import,
}

impl Trigger {
    pub const ALL: [Trigger; 5] =
        [Trigger::Schedule, Trigger::Misfire, Trigger::Manual, Trigger::Recovery, Trigger::Import];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Misfire => "misfire",
            Trigger::Manual => "manual",
            Trigger::Recovery => "recovery",
            Trigger::Import => "import",
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
    /// The node holding (or last holding) the run.
    pub owner: Option<String>,
    /// The schedule slot a scheduled or catch-up run stands for; at most one run per slot.
    pub slot: Option<DateTime<Utc>>,
    /// Incremented by every claim; the fencing token of the current holder.
    pub epoch: i64,
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
        let mut run = serializer.serialize_struct("RunRecord", 18)?;
        run.serialize_field("run_id", &self.id)?;
        run.serialize_field("pipeline", &self.pipeline)?;
        run.serialize_field("status", &self.status)?;
        run.serialize_field("trigger", &self.trigger)?;
        run.serialize_field("attempt", &self.attempt)?;
        run.serialize_field("node", &self.owner)?;
        run.serialize_field("slot", &self.slot)?;
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
    /// The claim of this run as its holder presents it.
    pub fn claim(&self) -> Claim {
        Claim {
            run_id: self.id,
            node: std::sync::Arc::from(self.owner.as_deref().unwrap_or_default()),
            epoch: self.epoch,
        }
    }

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

/// Who is asking: identifies the node taking the run.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub pipeline: &'a str,
    pub trigger: Trigger,
    pub owner: &'a str,
    pub lease: Duration,
    /// The schedule slot this run is for (scheduled and catch-up runs): a slot that already has
    /// a run is refused with [`LedgerError::SlotTaken`], on any node, at any time.
    pub slot: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("pipeline {pipeline} is already running (run {run_id})")]
    AlreadyRunning { pipeline: String, run_id: RunId },
    #[error("pipeline {pipeline} already ran its slot {slot}")]
    SlotTaken { pipeline: String, slot: DateTime<Utc> },
    /// A recovery trigger found no queued run: another node took it first.
    #[error("pipeline {0} has no queued run")]
    NothingQueued(String),
    #[error("run {0} not found")]
    RunNotFound(RunId),
    #[error("run {run_id} is no longer held by this node (it is {status}); nothing of it was committed")]
    LeaseLost { run_id: RunId, status: RunStatus },
    /// The storage behind the ledger failed; its error is kept as the source.
    #[error("ledger storage failed: {0}")]
    Storage(#[source] crate::storage::StorageFailure),
}

#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Starts a run of `pipeline`: takes over its queued row if there is one (one conditional
    /// statement: of two nodes asking, one gets it, the other nothing), otherwise inserts a new
    /// row, and marks it `running` with a lease and a fresh epoch. At most one queued-or-running
    /// row exists per pipeline and one run per slot (the storage enforces both), so two nodes can
    /// never run one pipeline at once, nor one slot twice. A [`Trigger::Recovery`] claim only
    /// takes a queued row, never inserts one.
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<RunRecord, LedgerError>;

    /// Extends the lease of a running run; fails if the claim was taken away.
    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<(), LedgerError>;

    /// Records how the run ended, if `claim` still holds it, in one transaction.
    async fn finish(&self, claim: &Claim, outcome: RunOutcome) -> Result<RunRecord, LedgerError>;

    /// Marks `running` rows whose node is gone (by the ledger's own liveness rule: heartbeats
    /// on the storage's clock) or whose lease expired as `abandoned`, and queues a fresh attempt
    /// of each. Returns the abandoned rows.
    async fn recover(&self) -> Result<Vec<RunRecord>, LedgerError>;

    /// Marks the running rows of `node` as `abandoned` and queues a fresh attempt of each: a
    /// node leaving the cluster hands its runs over at once.
    async fn hand_over(&self, node: &str) -> Result<Vec<RunRecord>, LedgerError>;

    /// The latest run of a pipeline, whatever its status.
    async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, LedgerError>;

    /// Pipelines with a queued run waiting to be picked up.
    async fn queued_pipelines(&self) -> Result<Vec<String>, LedgerError>;
}
