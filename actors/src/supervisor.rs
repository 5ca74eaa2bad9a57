//! Supervision: restart policies, restart limits, quarantine with backoff, escalation.
//!
//! actix's own `Supervisor` restarts an actor that stops itself but dies together with an actor
//! that panics, and it has no restart limit. This module fills the gap:
//!
//! * the [`Supervisor`] actor spawns each child's context future itself (`Context::into_future`)
//!   and watches the task's `JoinHandle`, so a panic anywhere in the child's message handling,
//!   or in a future the child spawned on its own context, is seen as `JoinError::is_panic()`;
//! * work a child runs outside its context goes through [`ChildContext::spawn_work`], whose panic
//!   makes the supervisor abort and restart that child;
//! * each child has a [`RestartPolicy`], a [`RestartLimit`] (so many restarts within a window)
//!   and a [`Backoff`]; past the limit the child is *quarantined* for an exponentially growing
//!   delay and the parent is told through an [`Escalation`] message.
//!
//! Messages taken: [`ChildEvent`] (from the watchers), [`GetTree`] (a snapshot of the subtree).
//! Messages sent: [`Escalation`] to the parent, restart events on the [`EventBus`].
//! When the supervisor itself stops or panics, its `Drop` aborts every child, so a restarted
//! supervisor never leaves orphans behind.
//!
//! A child's address changes when it restarts, and messages still queued in the dead mailbox are
//! answered with `MailboxError::Closed`: callers hold a [`ChildRef`], which always points at the
//! current incarnation, and the task ledger (not the mailbox) is what makes work converge.

use std::collections::VecDeque;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures::future::join_all;
use futures::FutureExt;
use serde::Serialize;
use tokio::task::{AbortHandle, JoinError};
use tokio::time::Instant;
use tracing::{error, info, warn, Instrument};

use crate::events::{Event, EventBus};

/// Mailbox capacity given to children unless their spec says otherwise. Bounded on purpose:
/// a slow actor pushes back on its senders instead of growing memory.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 64;

/// When a child that exited is started again (Erlang/OTP's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Always restarted, whatever the reason it exited.
    Permanent,
    /// Restarted only after a failure or a panic; a child that stops by itself stays stopped.
    Transient,
    /// Never restarted.
    Temporary,
}

/// How many restarts are tolerated within a sliding window before the child is quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartLimit {
    pub max_restarts: u32,
    pub within: Duration,
}

impl Default for RestartLimit {
    fn default() -> Self {
        Self { max_restarts: 5, within: Duration::from_secs(60) }
    }
}

/// Exponential backoff for quarantined children: `initial * factor^(level-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(300), factor: 2 }
    }
}

impl Backoff {
    /// Delay for the `level`-th consecutive quarantine (1-based).
    pub fn delay(&self, level: u32) -> Duration {
        let exponent = level.saturating_sub(1).min(32);
        let multiplier = self.factor.max(1).saturating_pow(exponent);
        self.initial.saturating_mul(multiplier).min(self.max)
    }
}

/// Why a child's task ended, like a process exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "lowercase")]
pub enum ExitReason {
    /// The actor stopped itself (`ctx.stop()`) without reporting a failure.
    Stopped,
    /// The actor reported a failure through [`ChildContext::fail`] and stopped.
    Failed(String),
    /// The actor's task, or work it spawned, panicked; the panic message.
    Panicked(String),
    /// The supervisor aborted the task (shutdown).
    Killed,
}

impl ExitReason {
    fn is_abnormal(&self) -> bool {
        matches!(self, ExitReason::Failed(_) | ExitReason::Panicked(_))
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Stopped => f.write_str("stopped"),
            ExitReason::Failed(reason) => write!(f, "failed: {reason}"),
            ExitReason::Panicked(message) => write!(f, "panicked: {message}"),
            ExitReason::Killed => f.write_str("killed"),
        }
    }
}

/// Turns a panic payload into the message given to `panic!`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Combines how the child's task ended with what the child (or its spawned work) reported.
fn exit_reason_from_join(result: Result<(), JoinError>, reported: Option<ExitReason>) -> ExitReason {
    match result {
        Ok(()) => reported.unwrap_or(ExitReason::Stopped),
        Err(join_error) if join_error.is_panic() => {
            ExitReason::Panicked(panic_message(join_error.into_panic().as_ref()))
        }
        // Aborted by the supervisor: because spawned work panicked, or for shutdown.
        Err(_) => match reported {
            Some(panicked @ ExitReason::Panicked(_)) => panicked,
            _ => ExitReason::Killed,
        },
    }
}

/// What the watcher of a child, or the child's spawned work, tells its supervisor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChildEvent {
    slot: usize,
    incarnation: u64,
    kind: ChildEventKind,
}

enum ChildEventKind {
    Exited(ExitReason),
    /// Work spawned through [`ChildContext::spawn_work`] panicked: abort and restart the child.
    WorkPanicked,
}

/// Sent to a supervisor's parent when one of its children is quarantined.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Escalation {
    pub supervisor: String,
    pub child: String,
    pub reason: ExitReason,
    pub restarts_in_window: u32,
    pub retry_in: Duration,
}

/// Asks for a snapshot of a supervisor's subtree.
#[derive(Message)]
#[rtype(result = "TreeNode")]
pub struct GetTree;

/// One node of the live supervisor tree, as shown by `tree`, the dashboard and GraphQL.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TreeNode {
    pub name: String,
    pub path: String,
    pub state: ChildState,
    pub policy: Option<RestartPolicy>,
    pub restarts: u64,
    pub incarnation: u64,
    pub last_exit: Option<ExitReason>,
    pub quarantined_for_ms: Option<u64>,
    pub children: Vec<TreeNode>,
}

/// State of a child as its supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChildState {
    Running,
    Restarting,
    Quarantined,
    Stopped,
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::Quarantined => "quarantined",
            ChildState::Stopped => "stopped",
        };
        f.write_str(text)
    }
}

/// Handed to a child's factory each time the child is (re)started.
#[derive(Clone)]
pub struct ChildContext {
    path: Arc<str>,
    slot: usize,
    incarnation: u64,
    supervisor: Recipient<ChildEvent>,
    reported: Arc<Mutex<Option<ExitReason>>>,
}

impl ChildContext {
    /// The child's full path in the tree, e.g. `root/pipelines/items/loader`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many times this child has been started before (0 on the first start).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Records why the child is about to stop, so its supervisor treats the stop as a failure
    /// (restarted under the `Transient` policy) rather than a clean exit.
    pub fn fail(&self, reason: impl fmt::Display) {
        self.report(ExitReason::Failed(reason.to_string()));
    }

    fn report(&self, reason: ExitReason) {
        *self.reported.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// Spawns work outside the actor's own context (on the current arbiter) under a name.
    /// A panic in that work is logged and makes the supervisor restart this child, exactly as a
    /// panic in a message handler would; whoever awaits the returned handle still sees the panic.
    pub fn spawn_work<F>(&self, name: &'static str, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + 'static,
        F::Output: 'static,
    {
        let span = tracing::info_span!("work", actor = %self.path, task = name);
        let child = self.clone();
        actix::spawn(
            async move {
                match AssertUnwindSafe(work).catch_unwind().await {
                    Ok(value) => value,
                    Err(payload) => {
                        let message = panic_message(payload.as_ref());
                        error!(actor = %child.path, task = name, panic = %message, "spawned work panicked");
                        child.report(ExitReason::Panicked(message));
                        child.supervisor.do_send(ChildEvent {
                            slot: child.slot,
                            incarnation: child.incarnation,
                            kind: ChildEventKind::WorkPanicked,
                        });
                        std::panic::resume_unwind(payload)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// A handle on the current incarnation of a supervised actor.
pub struct ChildRef<A: Actor> {
    current: Arc<RwLock<Option<Addr<A>>>>,
    last_exit: Arc<Mutex<Option<ExitReason>>>,
    /// Until when the child is quarantined, while it is.
    quarantined_until: Arc<Mutex<Option<Instant>>>,
}

impl<A: Actor> Clone for ChildRef<A> {
    fn clone(&self) -> Self {
        Self {
            current: self.current.clone(),
            last_exit: self.last_exit.clone(),
            quarantined_until: self.quarantined_until.clone(),
        }
    }
}

impl<A: Actor> Default for ChildRef<A> {
    fn default() -> Self {
        Self {
            current: Arc::new(RwLock::new(None)),
            last_exit: Arc::new(Mutex::new(None)),
            quarantined_until: Arc::new(Mutex::new(None)),
        }
    }
}

impl<A: Actor> ChildRef<A> {
    /// The address of the running incarnation, if the child is running.
    pub fn addr(&self) -> Option<Addr<A>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().filter(|addr| addr.connected()).cloned()
    }

    /// The address of the running incarnation, waiting up to `patience` for one to start
    /// (the child may be starting up or restarting).
    pub async fn wait_addr(&self, patience: Duration) -> Option<Addr<A>> {
        let deadline = Instant::now() + patience;
        for attempt in 0u32.. {
            if let Some(addr) = self.addr() {
                return Some(addr);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // A child being started by its supervisor appears within a few scheduler turns;
            // only a slow restart (e.g. after quarantine) needs real sleeping.
            if attempt < 32 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        None
    }

    /// How long the child's quarantine still lasts, while it is quarantined.
    pub fn quarantined_for(&self) -> Option<Duration> {
        let until = *self.quarantined_until.lock().unwrap_or_else(PoisonError::into_inner);
        until.map(|until| until.saturating_duration_since(Instant::now()))
    }

    fn set_quarantine(&self, until: Option<Instant>) {
        *self.quarantined_until.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }

    /// Why the previous incarnation exited, if it did.
    pub fn last_exit(&self) -> Option<ExitReason> {
        self.last_exit.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends a message to the current incarnation and waits for the answer.
    pub async fn send<M>(&self, message: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: ToEnvelope<A, M>,
    {
        match self.addr() {
            Some(addr) => addr.send(message).await,
            None => Err(MailboxError::Closed),
        }
    }

    fn set(&self, addr: Option<Addr<A>>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = addr;
    }

    fn record_exit(&self, reason: ExitReason) {
        *self.last_exit.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

/// What a factory hands back when it has started one incarnation of a child.
struct StartedChild {
    abort: AbortHandle,
    subtree: Option<Recipient<GetTree>>,
}

/// Starts incarnations of one kind of child. Implemented by [`ChildSpec`] for any actor.
trait ChildFactory {
    fn start(&self, context: ChildContext, mailbox_capacity: usize) -> StartedChild;
    /// Tells the child's handles that it is quarantined until `until` (`None`: no longer).
    fn quarantined(&self, until: Option<Instant>);
}

struct ActorFactory<A: Actor, F> {
    make: F,
    child_ref: ChildRef<A>,
    subtree: fn(&Addr<A>) -> Option<Recipient<GetTree>>,
}

impl<A, F> ChildFactory for ActorFactory<A, F>
where
    A: Actor<Context = Context<A>>,
    F: Fn(&ChildContext) -> A,
{
    fn start(&self, child: ChildContext, mailbox_capacity: usize) -> StartedChild {
        let actor = (self.make)(&child);
        let mut context = Context::<A>::new();
        context.set_mailbox_capacity(mailbox_capacity);
        let addr = context.address();
        self.child_ref.set(Some(addr.clone()));
        self.child_ref.set_quarantine(None);
        // `parent: None`: the path already says where the actor sits; nesting would repeat it.
        let span = tracing::info_span!(parent: None, "actor", path = %child.path);
        let handle = actix::spawn(context.into_future(actor).instrument(span));
        let abort = handle.abort_handle();
        let child_ref = self.child_ref.clone();
        let ChildContext { slot, incarnation, supervisor, reported, .. } = child;
        actix::spawn(async move {
            let outcome = handle.await;
            let reported = reported.lock().unwrap_or_else(PoisonError::into_inner).take();
            let reason = exit_reason_from_join(outcome, reported);
            child_ref.record_exit(reason.clone());
            // do_send, not send: this notice must not be lost to a full mailbox.
            supervisor.do_send(ChildEvent { slot, incarnation, kind: ChildEventKind::Exited(reason) });
        });
        StartedChild { abort, subtree: (self.subtree)(&addr) }
    }

    fn quarantined(&self, until: Option<Instant>) {
        self.child_ref.set_quarantine(until);
    }
}

/// How to start (and restart) one child: its name, policy, limits and factory.
#[derive(Clone)]
pub struct ChildSpec {
    name: String,
    policy: RestartPolicy,
    limit: RestartLimit,
    backoff: Backoff,
    mailbox_capacity: usize,
    factory: Arc<dyn ChildFactory>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec").field("name", &self.name).field("policy", &self.policy).finish()
    }
}

impl ChildSpec {
    /// A worker child: `make` builds a fresh actor for every (re)start.
    /// The returned [`ChildRef`] follows the child across restarts.
    pub fn worker<A, F>(name: impl Into<String>, make: F) -> (Self, ChildRef<A>)
    where
        A: Actor<Context = Context<A>>,
        F: Fn(&ChildContext) -> A + 'static,
    {
        Self::build(name, make, |_| None)
    }

    /// A child that is itself a supervisor (or answers [`GetTree`]), so its subtree is shown.
    pub fn supervisor<A, F>(name: impl Into<String>, make: F) -> (Self, ChildRef<A>)
    where
        A: Actor<Context = Context<A>> + Handler<GetTree>,
        F: Fn(&ChildContext) -> A + 'static,
    {
        Self::build(name, make, |addr| Some(addr.clone().recipient()))
    }

    fn build<A, F>(
        name: impl Into<String>,
        make: F,
        subtree: fn(&Addr<A>) -> Option<Recipient<GetTree>>,
    ) -> (Self, ChildRef<A>)
    where
        A: Actor<Context = Context<A>>,
        F: Fn(&ChildContext) -> A + 'static,
    {
        let child_ref = ChildRef::default();
        let factory = ActorFactory { make, child_ref: child_ref.clone(), subtree };
        let spec = Self {
            name: name.into(),
            policy: RestartPolicy::Permanent,
            limit: RestartLimit::default(),
            backoff: Backoff::default(),
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            factory: Arc::new(factory),
        };
        (spec, child_ref)
    }

    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn limit(mut self, limit: RestartLimit) -> Self {
        self.limit = limit;
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

struct ChildSlot {
    spec: ChildSpec,
    path: Arc<str>,
    state: ChildState,
    incarnation: u64,
    abort: Option<AbortHandle>,
    subtree: Option<Recipient<GetTree>>,
    started_at: Instant,
    recent_restarts: VecDeque<Instant>,
    total_restarts: u64,
    quarantine_level: u32,
    quarantined_until: Option<Instant>,
    last_exit: Option<ExitReason>,
}

/// A supervisor actor: starts its children, watches them, restarts them by policy.
pub struct Supervisor {
    path: Arc<str>,
    specs: Vec<ChildSpec>,
    slots: Vec<ChildSlot>,
    parent: Option<Recipient<Escalation>>,
    events: Option<EventBus>,
    shutting_down: bool,
}

impl Supervisor {
    /// A supervisor named `path` (its children are named `path/child`).
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: Arc::from(path.into()),
            specs: Vec::new(),
            slots: Vec::new(),
            parent: None,
            events: None,
            shutting_down: false,
        }
    }

    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.specs.push(spec);
        self
    }

    pub fn children(mut self, specs: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.specs.extend(specs);
        self
    }

    /// Where escalations go when a child is quarantined.
    pub fn escalate_to(mut self, parent: Recipient<Escalation>) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Publish restarts and quarantines on this bus.
    pub fn publish_to(mut self, events: EventBus) -> Self {
        self.events = Some(events);
        self
    }

    fn start_child(&mut self, slot_index: usize, ctx: &mut Context<Self>) {
        let supervisor = ctx.address().recipient();
        let Some(slot) = self.slots.get_mut(slot_index) else { return };
        slot.incarnation += 1;
        let child = ChildContext {
            path: slot.path.clone(),
            slot: slot_index,
            incarnation: slot.incarnation,
            supervisor,
            reported: Arc::new(Mutex::new(None)),
        };
        let started = slot.spec.factory.start(child, slot.spec.mailbox_capacity);
        slot.abort = Some(started.abort);
        slot.subtree = started.subtree;
        slot.state = ChildState::Running;
        slot.started_at = Instant::now();
        slot.quarantined_until = None;
    }

    fn on_exit(&mut self, slot_index: usize, reason: ExitReason, ctx: &mut Context<Self>) {
        let path = self.path.clone();
        let Some(slot) = self.slots.get_mut(slot_index) else { return };
        slot.abort = None;
        slot.subtree = None;
        slot.last_exit = Some(reason.clone());
        if self.shutting_down {
            slot.state = ChildState::Stopped;
            return;
        }
        let restart = match slot.spec.policy {
            RestartPolicy::Permanent => reason != ExitReason::Killed,
            RestartPolicy::Transient => reason.is_abnormal(),
            RestartPolicy::Temporary => false,
        };
        if reason.is_abnormal() {
            warn!(supervisor = %path, child = %slot.path, %reason, "child exited abnormally");
        } else {
            info!(supervisor = %path, child = %slot.path, %reason, "child exited");
        }
        if !restart {
            slot.state = ChildState::Stopped;
            return;
        }

        let now = Instant::now();
        let limit = slot.spec.limit;
        // A child that stayed up for a whole window has recovered: forget its quarantines.
        if now.duration_since(slot.started_at) >= limit.within {
            slot.quarantine_level = 0;
        }
        while slot.recent_restarts.front().is_some_and(|at| now.duration_since(*at) >= limit.within) {
            slot.recent_restarts.pop_front();
        }
        let child_path = slot.path.to_string();

        if slot.recent_restarts.len() as u32 >= limit.max_restarts {
            slot.quarantine_level += 1;
            let retry_in = slot.spec.backoff.delay(slot.quarantine_level);
            let restarts_in_window = slot.recent_restarts.len() as u32;
            slot.recent_restarts.clear();
            slot.state = ChildState::Quarantined;
            slot.quarantined_until = Some(now + retry_in);
            slot.spec.factory.quarantined(slot.quarantined_until);
            error!(
                supervisor = %path,
                child = %child_path,
                restarts_in_window,
                retry_in_ms = retry_in.as_millis() as u64,
                "restart limit reached, child quarantined"
            );
            if let Some(events) = &self.events {
                events.publish(Event::ActorQuarantined {
                    actor: child_path.clone(),
                    reason: reason.to_string(),
                    retry_in_ms: retry_in.as_millis() as u64,
                    level: slot.quarantine_level,
                });
            }
            if let Some(parent) = &self.parent {
                parent.do_send(Escalation {
                    supervisor: path.to_string(),
                    child: child_path,
                    reason: reason.clone(),
                    restarts_in_window,
                    retry_in,
                });
            }
            let incarnation = slot.incarnation;
            ctx.run_later(retry_in, move |supervisor, ctx| {
                let still_quarantined = supervisor
                    .slots
                    .get(slot_index)
                    .is_some_and(|slot| slot.incarnation == incarnation && slot.state == ChildState::Quarantined);
                if still_quarantined && !supervisor.shutting_down {
                    info!(child = %supervisor.slots[slot_index].path, "quarantine over, restarting child");
                    supervisor.restart_child(slot_index, &reason, ctx);
                }
            });
            return;
        }

        slot.recent_restarts.push_back(now);
        slot.state = ChildState::Restarting;
        self.restart_child(slot_index, &reason, ctx);
    }

    /// Starts a child again after `reason` stopped it, counting the restart where it happens
    /// (immediately, or when a quarantine ends), so the tree and the bus always agree.
    fn restart_child(&mut self, slot_index: usize, reason: &ExitReason, ctx: &mut Context<Self>) {
        let Some(slot) = self.slots.get_mut(slot_index) else { return };
        slot.total_restarts += 1;
        let restarts = slot.total_restarts;
        let child_path = slot.path.to_string();
        info!(supervisor = %self.path, child = %child_path, restarts, "restarting child");
        if let Some(events) = &self.events {
            events.publish(Event::ActorRestarted { actor: child_path, reason: reason.to_string(), restarts });
        }
        self.start_child(slot_index, ctx);
    }

    fn snapshot(&self) -> (TreeNode, Vec<(usize, Recipient<GetTree>)>) {
        let now = Instant::now();
        let mut nested = Vec::new();
        let children = self
            .slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                if let (ChildState::Running, Some(subtree)) = (slot.state, &slot.subtree) {
                    nested.push((index, subtree.clone()));
                }
                TreeNode {
                    name: slot.spec.name.clone(),
                    path: slot.path.to_string(),
                    state: slot.state,
                    policy: Some(slot.spec.policy),
                    restarts: slot.total_restarts,
                    incarnation: slot.incarnation,
                    last_exit: slot.last_exit.clone(),
                    quarantined_for_ms: slot
                        .quarantined_until
                        .map(|until| until.saturating_duration_since(now).as_millis() as u64),
                    children: Vec::new(),
                }
            })
            .collect();
        let name = self.path.rsplit('/').next().unwrap_or(&self.path).to_owned();
        let node = TreeNode {
            name,
            path: self.path.to_string(),
            state: ChildState::Running,
            policy: None,
            restarts: 0,
            incarnation: 0,
            last_exit: None,
            quarantined_for_ms: None,
            children,
        };
        (node, nested)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(DEFAULT_MAILBOX_CAPACITY);
        let now = Instant::now();
        self.slots = self
            .specs
            .iter()
            .map(|spec| ChildSlot {
                path: Arc::from(format!("{}/{}", self.path, spec.name)),
                spec: spec.clone(),
                state: ChildState::Stopped,
                incarnation: 0,
                abort: None,
                subtree: None,
                started_at: now,
                recent_restarts: VecDeque::new(),
                total_restarts: 0,
                quarantine_level: 0,
                quarantined_until: None,
                last_exit: None,
            })
            .collect();
        for index in 0..self.slots.len() {
            self.start_child(index, ctx);
        }
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        self.shutting_down = true;
        Running::Stop
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Also runs while unwinding from a panic: children never outlive their supervisor.
        for slot in &self.slots {
            if let Some(abort) = &slot.abort {
                abort.abort();
            }
        }
    }
}

impl Handler<ChildEvent> for Supervisor {
    type Result = ();

    fn handle(&mut self, event: ChildEvent, ctx: &mut Self::Context) {
        let current = self.slots.get(event.slot).map(|slot| slot.incarnation);
        if current != Some(event.incarnation) {
            return; // about an incarnation already replaced
        }
        match event.kind {
            ChildEventKind::Exited(reason) => self.on_exit(event.slot, reason, ctx),
            ChildEventKind::WorkPanicked => {
                // The watcher then reports the exit, as the panic the work recorded.
                if let Some(abort) = self.slots.get(event.slot).and_then(|slot| slot.abort.as_ref()) {
                    abort.abort();
                }
            }
        }
    }
}

impl Handler<GetTree> for Supervisor {
    type Result = ResponseFuture<TreeNode>;

    fn handle(&mut self, _: GetTree, _ctx: &mut Self::Context) -> Self::Result {
        let (mut node, nested) = self.snapshot();
        Box::pin(async move {
            let answers = join_all(nested.iter().map(|(_, subtree)| subtree.send(GetTree))).await;
            for ((index, _), answer) in nested.iter().zip(answers) {
                if let (Ok(subtree), Some(child)) = (answer, node.children.get_mut(*index)) {
                    child.children = subtree.children;
                }
            }
            node
        })
    }
}

/// Stops one child for good (it is not restarted, whatever its policy), e.g. during shutdown.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct StopChild(pub String);

impl Handler<StopChild> for Supervisor {
    type Result = bool;

    fn handle(&mut self, StopChild(name): StopChild, _ctx: &mut Self::Context) -> bool {
        let Some(slot) = self.slots.iter_mut().find(|slot| slot.spec.name == name) else { return false };
        // Temporary: the exit this abort causes is final.
        slot.spec.policy = RestartPolicy::Temporary;
        slot.quarantined_until = None;
        slot.state = ChildState::Stopped;
        if let Some(abort) = &slot.abort {
            abort.abort();
        }
        true
    }
}

/// Asks a supervisor to stop its children and itself (graceful shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) {
        self.shutting_down = true;
        for slot in &self.slots {
            if let Some(abort) = &slot.abort {
                abort.abort();
            }
        }
        ctx.stop();
    }
}
