//! An in-memory [`Ledger`], for engine tests and for embedding the engine without a database.
//! It enforces the same rules as the database ledger: one active run per pipeline, one run per
//! slot, claims with epochs, leases, recovery of runs whose owner is dead (marked with
//! [`MemoryLedger::mark_dead`]: there are no heartbeats in memory).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use crate::ledger::{
    Claim, ClaimRequest, Ledger, LedgerError, RunCounts, RunId, RunOutcome, RunRecord, RunStatus, Trigger,
};

#[derive(Default)]
pub struct MemoryLedger {
    runs: Mutex<Vec<RunRecord>>,
    dead: Mutex<HashSet<String>>,
}

impl MemoryLedger {
    /// Every run so far, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Declares the node `owner` dead: [`Ledger::recover`] abandons its runs.
    pub fn mark_dead(&self, owner: &str) {
        self.dead.lock().unwrap_or_else(PoisonError::into_inner).insert(owner.to_owned());
    }

    /// Inserts a row as another (possibly dead) process would have left it.
    pub fn insert(&self, record: RunRecord) {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }
}

fn lease_until(lease: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

fn held<'a>(runs: &'a mut [RunRecord], claim: &Claim) -> Result<&'a mut RunRecord, LedgerError> {
    let run = runs.iter_mut().find(|run| run.id == claim.run_id).ok_or(LedgerError::RunNotFound(claim.run_id))?;
    if run.status != RunStatus::Running || run.owner.as_deref() != Some(&*claim.node) || run.epoch != claim.epoch {
        return Err(LedgerError::LeaseLost { run_id: claim.run_id, status: run.status });
    }
    Ok(run)
}

fn abandon(runs: &mut Vec<RunRecord>, is_lost: impl Fn(&RunRecord) -> bool) -> Vec<RunRecord> {
    let now = Utc::now();
    let mut abandoned = Vec::new();
    for run in runs.iter_mut().filter(|run| run.status == RunStatus::Running) {
        if is_lost(run) {
            run.status = RunStatus::Abandoned;
            run.finished_at = Some(now);
            run.error = Some("abandoned: the node running it stopped".to_owned());
            abandoned.push(run.clone());
        }
    }
    for old in &abandoned {
        let next = RunRecord {
            id: runs.len() as RunId + 1,
            pipeline: old.pipeline.clone(),
            status: RunStatus::Queued,
            trigger: Trigger::Recovery,
            attempt: old.attempt + 1,
            owner: None,
            slot: None,
            epoch: 0,
            queued_at: now,
            started_at: None,
            finished_at: None,
            lease_until: None,
            counts: RunCounts::default(),
            error: None,
            failure: None,
            notes: Vec::new(),
        };
        runs.push(next);
    }
    abandoned
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<RunRecord, LedgerError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        if let Some(active) = runs.iter_mut().find(|run| run.pipeline == request.pipeline && !run.status.is_finished())
        {
            if active.status == RunStatus::Running {
                return Err(LedgerError::AlreadyRunning { pipeline: request.pipeline.to_owned(), run_id: active.id });
            }
            active.status = RunStatus::Running;
            active.owner = Some(request.owner.to_owned());
            active.epoch += 1;
            active.slot = active.slot.or(request.slot);
            active.started_at = Some(now);
            active.lease_until = Some(lease_until(request.lease));
            return Ok(active.clone());
        }
        if request.trigger == Trigger::Recovery {
            return Err(LedgerError::NothingQueued(request.pipeline.to_owned()));
        }
        if let Some(slot) = request.slot {
            if runs.iter().any(|run| run.pipeline == request.pipeline && run.slot == Some(slot)) {
                return Err(LedgerError::SlotTaken { pipeline: request.pipeline.to_owned(), slot });
            }
        }
        let record = RunRecord {
            id: runs.len() as RunId + 1,
            pipeline: request.pipeline.to_owned(),
            status: RunStatus::Running,
            trigger: request.trigger,
            attempt: 1,
            owner: Some(request.owner.to_owned()),
            slot: request.slot,
            epoch: 1,
            queued_at: now,
            started_at: Some(now),
            finished_at: None,
            lease_until: Some(lease_until(request.lease)),
            counts: RunCounts::default(),
            error: None,
            failure: None,
            notes: Vec::new(),
        };
        runs.push(record.clone());
        Ok(record)
    }

    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<(), LedgerError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        held(&mut runs, claim)?.lease_until = Some(lease_until(lease));
        Ok(())
    }

    async fn finish(&self, claim: &Claim, outcome: RunOutcome) -> Result<RunRecord, LedgerError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let run = held(&mut runs, claim)?;
        run.status = outcome.status;
        run.counts = outcome.counts;
        run.error = outcome.error;
        run.failure = outcome.failure;
        run.notes = outcome.notes;
        run.finished_at = Some(Utc::now());
        run.lease_until = None;
        Ok(run.clone())
    }

    async fn recover(&self) -> Result<Vec<RunRecord>, LedgerError> {
        let dead = self.dead.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        Ok(abandon(&mut runs, |run| {
            run.lease_until.is_some_and(|until| until < now)
                || run.owner.as_deref().is_some_and(|owner| dead.contains(owner))
        }))
    }

    async fn hand_over(&self, node: &str) -> Result<Vec<RunRecord>, LedgerError> {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(abandon(&mut runs, |run| run.owner.as_deref() == Some(node)))
    }

    async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, LedgerError> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(runs.iter().rev().find(|run| run.pipeline == pipeline && run.status != RunStatus::Queued).cloned())
    }

    async fn queued_pipelines(&self) -> Result<Vec<String>, LedgerError> {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(runs.iter().filter(|run| run.status == RunStatus::Queued).map(|run| run.pipeline.clone()).collect())
    }
}
