//! The scheduler actor: fires each pipeline's runs on its schedule, and recovers abandoned runs.
//!
//! On start (and on every restart) it asks the ledger, for each pipeline, when the last run
//! started; a pipeline whose next slot after that instant is already past fired nothing while the
//! process was down, and under the `fire-once` misfire policy it runs once now — not once per
//! missed slot. It then arms one timer for the earliest next fire time. Timers run on tokio's
//! clock and calendar time comes from a [`Clock`], so tests drive it with paused time.
//!
//! Every `recovery_interval` (and at start) it asks the ledger to mark runs whose node died as
//! `abandoned` (a fresh attempt is queued for each), then triggers every pipeline with a queued
//! run with [`Trigger::Recovery`]: whichever node's claim comes first starts it.
//!
//! Each scheduled and catch-up run names its slot ([`RunOptions::slot`]); the ledger runs a slot
//! once, so several schedulers (nodes), even with skewed clocks, never run one slot twice. No
//! leader is needed: every node fires every slot and all but one are refused.
//!
//! Messages taken: [`GetSchedule`]. Messages sent: [`TriggerRun`](crate::pipeline::TriggerRun)
//! through each [`PipelineHandle`]. A trigger refused because the pipeline is still running is
//! logged and skipped; the slot is not queued up.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::clock::SharedClock;
use crate::ledger::{Ledger, Trigger};
use crate::pipeline::{PipelineHandle, RunOptions, TriggerError};
use crate::schedule::{MaintenanceWindow, Schedule};

/// What to do at start-up with a slot that passed while the process was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MisfirePolicy {
    /// Run once now, however many slots were missed.
    #[default]
    FireOnce,
    /// Wait for the next slot.
    Skip,
}

/// One pipeline as the scheduler knows it.
#[derive(Clone)]
pub struct ScheduledPipeline {
    pub schedule: Schedule,
    pub misfire: MisfirePolicy,
    pub handle: PipelineHandle,
}

pub struct SchedulerSettings {
    pub windows: Vec<MaintenanceWindow>,
    pub recovery_interval: Duration,
    /// The longest the scheduler sleeps before re-reading the clock, so a wall-clock jump (NTP,
    /// suspend) delays a slot by at most this much.
    pub max_sleep: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self { windows: Vec::new(), recovery_interval: Duration::from_secs(30), max_sleep: Duration::from_secs(60) }
    }
}

struct Entry {
    pipeline: ScheduledPipeline,
    /// The slot `next_fire` serves.
    next_slot: Option<DateTime<Utc>>,
    next_fire: Option<DateTime<Utc>>,
    last_fired: Option<DateTime<Utc>>,
}

pub struct Scheduler {
    entries: Vec<Entry>,
    settings: Arc<SchedulerSettings>,
    clock: SharedClock,
    ledger: Arc<dyn Ledger>,
    timer: Option<SpawnHandle>,
}

/// The schedule as operators see it.
#[derive(Message)]
#[rtype(result = "Vec<ScheduleEntry>")]
pub struct GetSchedule;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScheduleEntry {
    pub pipeline: String,
    pub spec: String,
    pub resolved: String,
    pub time_zone: String,
    pub next_fire: Option<DateTime<Utc>>,
    pub last_fired: Option<DateTime<Utc>>,
}

impl Scheduler {
    pub fn new(
        pipelines: Vec<ScheduledPipeline>,
        settings: Arc<SchedulerSettings>,
        clock: SharedClock,
        ledger: Arc<dyn Ledger>,
    ) -> Self {
        let entries = pipelines
            .into_iter()
            .map(|pipeline| Entry { pipeline, next_slot: None, next_fire: None, last_fired: None })
            .collect();
        Self { entries, settings, clock, ledger, timer: None }
    }

    /// Points `entry` at its first slot strictly after `after`.
    fn plan(entry: &mut Entry, after: DateTime<Utc>, windows: &[MaintenanceWindow]) {
        let schedule = &entry.pipeline.schedule;
        entry.next_slot = schedule.next_slot_after(after);
        entry.next_fire = entry.next_slot.map(|slot| schedule.fire_time(slot, windows));
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        let Some(earliest) = self.entries.iter().filter_map(|entry| entry.next_fire).min() else { return };
        let wait = (earliest - self.clock.now()).to_std().unwrap_or(Duration::ZERO).min(self.settings.max_sleep);
        self.timer = Some(ctx.run_later(wait, |scheduler, ctx| scheduler.tick(ctx)));
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.timer = None;
        let now = self.clock.now();
        let windows = self.settings.windows.clone();
        for index in 0..self.entries.len() {
            let entry = &mut self.entries[index];
            let Some(slot) = entry.next_slot.filter(|_| entry.next_fire.is_some_and(|fire| fire <= now)) else {
                continue;
            };
            entry.last_fired = Some(now);
            // Next slot strictly after both the slot just served and now: missed slots coalesce.
            Self::plan(entry, slot.max(now), &windows);
            let handle = entry.pipeline.handle.clone();
            fire(ctx, handle, Trigger::Schedule, Some(slot));
        }
        self.arm(ctx);
    }

    /// Abandons the runs of dead nodes, then starts every queued run this node knows the
    /// pipeline of (its own retries, and those a dead or departed node left).
    fn recover(&mut self, ctx: &mut Context<Self>) {
        let ledger = self.ledger.clone();
        let recovery = async move {
            let abandoned = ledger.recover().await;
            (abandoned, ledger.queued_pipelines().await)
        };
        ctx.spawn(recovery.into_actor(self).map(|(abandoned, queued), scheduler, ctx| {
            match abandoned {
                Ok(abandoned) => {
                    for run in abandoned {
                        warn!(
                            pipeline = %run.pipeline,
                            run_id = run.id,
                            node = run.owner.as_deref().unwrap_or(""),
                            "run abandoned by a dead node, queued to run again"
                        );
                    }
                }
                Err(error) => warn!(%error, "could not recover abandoned runs"),
            }
            match queued {
                Ok(queued) => {
                    for entry in scheduler
                        .entries
                        .iter()
                        .filter(|entry| queued.iter().any(|name| name == entry.pipeline.handle.name()))
                    {
                        fire(ctx, entry.pipeline.handle.clone(), Trigger::Recovery, None);
                    }
                }
                Err(error) => warn!(%error, "could not read the queued runs"),
            }
        }));
    }
}

fn fire(ctx: &mut Context<Scheduler>, handle: PipelineHandle, trigger: Trigger, slot: Option<DateTime<Utc>>) {
    let name = handle.name().to_owned();
    let send = async move { handle.trigger(trigger, RunOptions { slot, ..RunOptions::default() }).await };
    ctx.spawn(fut::wrap_future::<_, Scheduler>(send).map(move |result, _, _| match result {
        Ok(run_id) => debug!(pipeline = %name, run_id, %trigger, slot = slot.map(tracing::field::display), "run triggered"),
        Err(TriggerError::AlreadyRunning { run_id, .. }) if trigger == Trigger::Recovery => {
            debug!(pipeline = %name, run_id, "a run is going, the queued run waits")
        }
        Err(TriggerError::AlreadyRunning { run_id, .. }) => {
            info!(pipeline = %name, run_id, %trigger, slot = slot.map(tracing::field::display), "previous run still going, slot skipped")
        }
        // Another node was first: the slot runs there, or the queued run started there.
        Err(error @ (TriggerError::SlotTaken { .. } | TriggerError::NothingQueued(_))) => {
            debug!(pipeline = %name, %trigger, %error, "taken by another node")
        }
        Err(error) => warn!(pipeline = %name, %trigger, %error, "could not trigger run"),
    }));
}

/// Runs the start-up catch-up runs one after another, in the order the pipelines were given:
/// that order is their dependency order, so a source never reads before what it refers to has
/// loaded (on a first start, every pipeline catches up at once).
fn catch_up_in_order(ctx: &mut Context<Scheduler>, handles: Vec<(PipelineHandle, Option<DateTime<Utc>>)>) {
    if handles.is_empty() {
        return;
    }
    let runs = async move {
        for (handle, slot) in handles {
            let name = handle.name().to_owned();
            let options = RunOptions { slot, ..RunOptions::default() };
            match handle.run_to_completion(Trigger::Misfire, options).await {
                Ok(run) => debug!(pipeline = %name, run_id = run.id, status = ?run.status, "catch-up run finished"),
                Err(TriggerError::AlreadyRunning { run_id, .. }) => {
                    info!(pipeline = %name, run_id, slot = slot.map(tracing::field::display), "a run is already going, catch-up skipped")
                }
                Err(TriggerError::SlotTaken { .. }) => {
                    info!(pipeline = %name, slot = slot.map(tracing::field::display), "another node already ran the missed slot, catch-up skipped")
                }
                Err(error) => warn!(pipeline = %name, %error, "could not run the catch-up run"),
            }
        }
    };
    ctx.spawn(fut::wrap_future::<_, Scheduler>(runs));
}

impl Actor for Scheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let ledger = self.ledger.clone();
        let names: Vec<String> = self.entries.iter().map(|entry| entry.pipeline.handle.name().to_owned()).collect();
        let history = async move {
            let mut last_started = Vec::with_capacity(names.len());
            for name in &names {
                let last = ledger.last_run(name).await;
                last_started.push(last.map(|run| run.map(|run| run.started_at.unwrap_or(run.queued_at))));
            }
            let queued = ledger.queued_pipelines().await.unwrap_or_default();
            (last_started, queued)
        };
        // `wait`: no other message is handled until the schedule is known.
        ctx.wait(history.into_actor(self).map(|(last_started, queued), scheduler, ctx| {
            let now = scheduler.clock.now();
            let windows = scheduler.settings.windows.clone();
            let mut catch_up = Vec::new();
            for (entry, last) in scheduler.entries.iter_mut().zip(last_started) {
                Scheduler::plan(entry, now, &windows);
                let schedule = &entry.pipeline.schedule;
                let name = entry.pipeline.handle.name().to_owned();
                let last = match last {
                    Ok(last) => last,
                    Err(error) => {
                        warn!(pipeline = %name, %error, "could not read the last run; misfire check skipped");
                        continue;
                    }
                };
                let missed = match last {
                    None => !schedule.is_never(),
                    Some(last) => schedule.next_slot_after(last).is_some_and(|slot| slot <= now),
                };
                if queued.contains(&name) {
                    info!(pipeline = %name, "a queued run is waiting, starting it");
                    fire(ctx, entry.pipeline.handle.clone(), Trigger::Recovery, None);
                } else if missed && entry.pipeline.misfire == MisfirePolicy::FireOnce {
                    info!(pipeline = %name, last_started = last.map(tracing::field::display), "missed a slot while down, running once now");
                    // The catch-up stands for the latest missed slot: nodes starting together
                    // name the same one, and only one of them runs it.
                    catch_up.push((entry.pipeline.handle.clone(), schedule.last_slot_at_or_before(now)));
                }
            }
            catch_up_in_order(ctx, catch_up);
            scheduler.arm(ctx);
        }));
        self.recover(ctx);
        ctx.run_interval(self.settings.recovery_interval, |scheduler, ctx| scheduler.recover(ctx));
    }
}

impl Handler<GetSchedule> for Scheduler {
    type Result = MessageResult<GetSchedule>;

    fn handle(&mut self, _: GetSchedule, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.entries
                .iter()
                .map(|entry| ScheduleEntry {
                    pipeline: entry.pipeline.handle.name().to_owned(),
                    spec: entry.pipeline.schedule.spec().to_owned(),
                    resolved: entry.pipeline.schedule.resolved().to_owned(),
                    time_zone: entry.pipeline.schedule.time_zone().to_string(),
                    next_fire: entry.next_fire,
                    last_fired: entry.last_fired,
                })
                .collect(),
        )
    }
}
