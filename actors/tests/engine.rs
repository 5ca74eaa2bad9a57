//! Engine behaviour under controlled time: supervision, scheduling, pipelines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hayloft_actors::clock::{Clock, TokioClock};
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::ledger::{Ledger, RunCounts, RunRecord, RunStatus, Trigger};
use hayloft_actors::memory_ledger::MemoryLedger;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, RunOptions, RunnerSettings,
    StageCounters, StageError, Transform, TriggerError,
};
use hayloft_actors::schedule::{MaintenanceWindow, Schedule};
use hayloft_actors::scheduler::{MisfirePolicy, ScheduledPipeline, Scheduler, SchedulerSettings};
use hayloft_actors::supervisor::{
    Backoff, ChildContext, ChildSpec, ChildState, Escalation, ExitReason, GetTree, RestartLimit, RestartPolicy,
    Supervisor,
};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

// ---------------------------------------------------------------- supervision

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

#[derive(Message)]
#[rtype(result = "()")]
struct BoomInWork;

/// Answers pings with its incarnation; panics on demand.
struct Worker {
    incarnation: u64,
    context: ChildContext,
}

impl Actor for Worker {
    type Context = Context<Self>;
}

impl Handler<Ping> for Worker {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> u64 {
        self.incarnation
    }
}

impl Handler<Boom> for Worker {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Self::Context) {
        panic!("boom in handler");
    }
}

impl Handler<BoomInWork> for Worker {
    type Result = ();
    fn handle(&mut self, _: BoomInWork, _: &mut Self::Context) {
        self.context.spawn_work("doomed", async { panic!("boom in spawned work") });
    }
}

fn worker_spec(name: &str) -> (ChildSpec, hayloft_actors::supervisor::ChildRef<Worker>) {
    ChildSpec::worker(name, |context: &ChildContext| Worker {
        incarnation: context.incarnation(),
        context: context.clone(),
    })
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

// A panic in one actor's handler restarts that actor only; its sibling keeps answering.
#[actix::test]
async fn panicking_actor_is_restarted_and_sibling_keeps_answering() {
    let (flaky_spec, flaky) = worker_spec("flaky");
    let (steady_spec, steady) = worker_spec("steady");
    let root = Supervisor::new("root").child(flaky_spec).child(steady_spec).start();
    settle().await;
    assert_eq!(flaky.send(Ping).await.unwrap(), 1);
    let steady_before = steady.addr().unwrap();

    assert!(flaky.send(Boom).await.is_err(), "the panicking handler never answers");
    settle().await;

    assert_eq!(flaky.send(Ping).await.unwrap(), 2, "a new incarnation answers");
    assert_eq!(steady.send(Ping).await.unwrap(), 1, "the sibling was never restarted");
    assert!(steady_before.connected());
    assert_eq!(flaky.last_exit(), Some(ExitReason::Panicked("boom in handler".to_owned())));

    let tree = root.send(GetTree).await.unwrap();
    let flaky_node = tree.children.iter().find(|node| node.name == "flaky").unwrap();
    assert_eq!((flaky_node.restarts, flaky_node.state), (1, ChildState::Running));
}

// A panic in work an actor spawned restarts that actor too.
#[actix::test]
async fn panic_in_spawned_work_restarts_the_actor() {
    let (spec, child) = worker_spec("spawner");
    let _root = Supervisor::new("root").child(spec).start();
    settle().await;
    child.send(BoomInWork).await.unwrap();
    settle().await;
    assert_eq!(child.send(Ping).await.unwrap(), 2);
    assert_eq!(child.last_exit(), Some(ExitReason::Panicked("boom in spawned work".to_owned())));
}

struct EscalationSink(Rc<RefCell<Vec<Escalation>>>);

impl Actor for EscalationSink {
    type Context = Context<Self>;
}

impl Handler<Escalation> for EscalationSink {
    type Result = ();
    fn handle(&mut self, escalation: Escalation, _: &mut Self::Context) {
        self.0.borrow_mut().push(escalation);
    }
}

/// Panics as soon as it starts: a child that keeps failing.
struct CrashOnStart(Arc<AtomicU32>);

impl Actor for CrashOnStart {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        self.0.fetch_add(1, Ordering::SeqCst);
        ctx.run_later(Duration::from_millis(1), |_, _| panic!("cannot start"));
    }
}

// A child that keeps failing is quarantined after its limit, with exponential backoff, and the
// parent is told.
#[actix::test]
async fn failing_child_is_quarantined_with_backoff() {
    tokio::time::pause();
    let starts = Arc::new(AtomicU32::new(0));
    let counter = starts.clone();
    let (spec, _child) = ChildSpec::worker("crasher", move |_: &ChildContext| CrashOnStart(counter.clone()));
    let spec = spec.limit(RestartLimit { max_restarts: 3, within: Duration::from_secs(60) }).backoff(Backoff {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(60),
        factor: 2,
    });
    let escalations = Rc::new(RefCell::new(Vec::new()));
    let sink = EscalationSink(escalations.clone()).start();
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let root = Supervisor::new("root").child(spec).escalate_to(sink.recipient()).publish_to(bus.clone()).start();
    // Every restart the tree counts is announced once on the bus (what the metrics count).
    let mut announced = 0;
    let mut count_announced = move || {
        while let Ok(event) = events.try_recv() {
            announced += u64::from(matches!(&*event, Event::ActorRestarted { .. }));
        }
        announced
    };

    // 1 start + 3 restarts, then quarantine.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 4);
    let tree = root.send(GetTree).await.unwrap();
    assert_eq!(tree.children[0].state, ChildState::Quarantined);
    assert_eq!((tree.children[0].restarts, count_announced()), (3, 3), "the quarantine is not a restart yet");
    assert_eq!(escalations.borrow().len(), 1);
    assert_eq!(escalations.borrow()[0].retry_in, Duration::from_secs(10));
    assert_eq!(escalations.borrow()[0].child, "root/crasher");

    // Nothing happens during the first backoff (10 s)...
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 4);
    // ...then one restart, which fails at once and goes straight back to quarantine only after
    // the window's restarts are used again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(starts.load(Ordering::SeqCst) >= 5);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 8, "quarantine lifted: a fresh window of 3 restarts");
    let tree = root.send(GetTree).await.unwrap();
    assert_eq!((tree.children[0].restarts, count_announced()), (7, 7), "the restart after a quarantine counts");
    assert_eq!(escalations.borrow().len(), 2);
    assert_eq!(escalations.borrow()[1].retry_in, Duration::from_secs(20), "backoff doubles");
}

/// Stops cleanly when asked.
struct Quitter;

impl Actor for Quitter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

// Transient children that stop cleanly stay stopped; temporary ones are never restarted.
#[actix::test]
async fn restart_policies_are_respected() {
    let (transient, _a) = ChildSpec::worker("transient", |_: &ChildContext| Quitter);
    let (temporary, _b) = ChildSpec::worker("temporary", |_: &ChildContext| CrashOnStart(Arc::new(AtomicU32::new(0))));
    let root = Supervisor::new("root")
        .child(transient.policy(RestartPolicy::Transient))
        .child(temporary.policy(RestartPolicy::Temporary))
        .start();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tree = root.send(GetTree).await.unwrap();
    for node in &tree.children {
        assert_eq!((node.state, node.restarts), (ChildState::Stopped, 0), "{node:?}");
    }
}

// Restarts and quarantines are announced on the event bus.
#[actix::test]
async fn restarts_are_published_on_the_bus() {
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let (spec, child) = worker_spec("flaky");
    let _root = Supervisor::new("root").child(spec).publish_to(bus.clone()).start();
    settle().await;
    let _ = child.send(Boom).await;
    let event = tokio::time::timeout(Duration::from_secs(1), events.recv()).await.unwrap().unwrap();
    match &*event {
        Event::ActorRestarted { actor, reason, restarts } => {
            assert_eq!(actor, "root/flaky");
            assert!(reason.contains("boom in handler"));
            assert_eq!(*restarts, 1);
        }
        other => panic!("unexpected event {other:?}"),
    }
}

/// Counts the runs it hears finish, through the bus stream the engine documents for actors.
struct Listener(Rc<RefCell<Vec<String>>>, EventBus);

impl Actor for Listener {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.add_stream(self.1.stream());
    }
}

impl StreamHandler<BusItem> for Listener {
    fn handle(&mut self, item: BusItem, _: &mut Self::Context) {
        if let BusItem::Event(event) = item {
            if let Event::RunFinished { pipeline, status, .. } = &*event {
                self.0.borrow_mut().push(format!("{pipeline}:{status}"));
            }
        }
    }
}

// An actor subscribes to the bus with `ctx.add_stream` and hears runs finish.
#[actix::test]
async fn actors_subscribe_to_the_bus() {
    let bus = EventBus::default();
    let heard = Rc::new(RefCell::new(Vec::new()));
    let _listener = Listener(heard.clone(), bus.clone()).start();
    let (_root, handle) = test_pipeline(Arc::new(MemoryLedger::default()), bus, Arc::default());
    settle().await;
    handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
    settle().await;
    assert_eq!(*heard.borrow(), ["numbers:succeeded"]);
}

// A slow subscriber misses events (and is told how many) instead of blocking publishers.
#[actix::test]
async fn slow_subscriber_is_told_what_it_missed() {
    use futures::StreamExt;
    let bus = EventBus::new(4);
    let mut stream = bus.stream();
    for restarts in 0..10 {
        bus.publish(Event::ActorRestarted { actor: "a".into(), reason: "r".into(), restarts });
    }
    match stream.next().await.unwrap() {
        BusItem::Missed(missed) => assert_eq!(missed, 6),
        other => panic!("expected a gap, got {other:?}"),
    }
}

// ---------------------------------------------------------------- pipelines

/// Extracts a number after an optional delay; can be told to fail or panic.
#[derive(Clone, Default)]
struct Script {
    delay: Duration,
    panic_in: Option<&'static str>,
    fail: bool,
}

struct Source(Arc<Mutex<Script>>);

#[async_trait(?Send)]
impl Extract for Source {
    type Output = u64;
    async fn extract(&self, _run: &RunContext, counters: &StageCounters) -> Result<u64, StageError> {
        let script = self.0.lock().unwrap().clone();
        tokio::time::sleep(script.delay).await;
        if script.panic_in == Some("extract") {
            panic!("extractor exploded");
        }
        if script.fail {
            return Err(StageError::Upstream("connection refused".into()));
        }
        counters.emitted(1);
        Ok(3)
    }
}

struct Expand(Arc<Mutex<Script>>);

impl Transform for Expand {
    type Input = u64;
    type Output = Vec<u64>;
    fn transform(&self, input: u64, _run: &RunContext, counters: &StageCounters) -> Result<Vec<u64>, StageError> {
        if self.0.lock().unwrap().panic_in == Some("transform") {
            panic!("transformer exploded");
        }
        counters.emitted(input);
        Ok((0..input).collect())
    }
}

struct Sink;

#[async_trait(?Send)]
impl Load for Sink {
    type Input = Vec<u64>;
    async fn load(
        &self,
        input: Vec<u64>,
        _run: &RunContext,
        _counters: &StageCounters,
    ) -> Result<LoadReport, StageError> {
        Ok(LoadReport {
            counts: RunCounts { inserted: input.len() as i64, ..RunCounts::default() },
            ..LoadReport::default()
        })
    }
}

fn test_pipeline(
    ledger: Arc<MemoryLedger>,
    bus: EventBus,
    script: Arc<Mutex<Script>>,
) -> (Addr<Supervisor>, PipelineHandle) {
    let deps = PipelineDeps { ledger, events: bus.clone(), settings: RunnerSettings::default() };
    let (spec, handle) = pipeline("numbers", Source(script.clone()), Expand(script), Sink, deps);
    let root = Supervisor::new("root").child(spec).publish_to(bus).start();
    (root, handle)
}

// A run goes through all stages and is recorded in the ledger with its counts.
#[actix::test]
async fn run_flows_through_stages_into_the_ledger() {
    let ledger = Arc::new(MemoryLedger::default());
    let (_root, handle) = test_pipeline(ledger.clone(), EventBus::default(), Arc::default());
    settle().await;
    let record = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded);
    assert_eq!(record.counts.inserted, 3);
    assert_eq!(handle.counters().extractor.snapshot().received, 1);
    assert_eq!(handle.counters().transformer.snapshot().emitted, 3);
    assert_eq!(handle.counters().loader.snapshot().emitted, 3);
}

// Two triggers of one pipeline never overlap: the second is refused while the first runs.
#[actix::test]
async fn triggers_of_one_pipeline_never_overlap() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    let script = Arc::new(Mutex::new(Script { delay: Duration::from_secs(5), ..Script::default() }));
    let (_root, handle) = test_pipeline(ledger.clone(), EventBus::default(), script);
    settle().await;
    let (first, second) = futures::join!(
        handle.trigger(Trigger::Manual, RunOptions::default()),
        handle.trigger(Trigger::Schedule, RunOptions::default())
    );
    let first = first.unwrap();
    assert!(matches!(second, Err(TriggerError::AlreadyRunning { .. })), "{second:?}");
    assert_eq!(handle.active_run().await, Some(first));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(handle.active_run().await, None);
    // Once finished, the pipeline runs again.
    let third = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
    assert_eq!(third.status, RunStatus::Succeeded);
    let runs = ledger.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].finished_at.unwrap() <= runs[1].started_at.unwrap());
}

// A panicking stage fails the run with the panic's message, is restarted, and the next run works.
#[actix::test]
async fn stage_panic_fails_the_run_and_restarts_the_stage() {
    for (stage, actor) in [("extract", "extractor"), ("transform", "transformer")] {
        let ledger = Arc::new(MemoryLedger::default());
        let script = Arc::new(Mutex::new(Script { panic_in: Some(stage), ..Script::default() }));
        let (root, handle) = test_pipeline(ledger.clone(), EventBus::default(), script.clone());
        settle().await;
        let record = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
        assert_eq!(record.status, RunStatus::Failed);
        let error = record.error.unwrap();
        assert!(error.contains("exploded"), "{error}");

        script.lock().unwrap().panic_in = None;
        settle().await;
        let record = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
        assert_eq!(record.status, RunStatus::Succeeded);

        let tree = root.send(GetTree).await.unwrap();
        let stages = &tree.children[0].children;
        let restarted: Vec<_> = stages.iter().filter(|node| node.restarts > 0).map(|node| node.name.as_str()).collect();
        assert_eq!(restarted, [actor], "only the panicking stage restarts");
    }
}

// A stage that keeps panicking is quarantined; a run that reaches it then says so, rather
// than repeating the panic that led there, and fetches nothing.
#[actix::test]
async fn runs_refused_by_a_quarantined_stage_say_so() {
    let ledger = Arc::new(MemoryLedger::default());
    let script = Arc::new(Mutex::new(Script { panic_in: Some("transform"), ..Script::default() }));
    let (_root, handle) = test_pipeline(ledger.clone(), EventBus::default(), script);
    settle().await;
    let mut errors = Vec::new();
    for _ in 0..30 {
        let record = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
        assert_eq!(record.status, RunStatus::Failed);
        let error = record.error.unwrap();
        let refused = error.contains("transformer is quarantined");
        errors.push(error);
        if refused {
            break;
        }
        settle().await;
    }
    let (refusal, panics) = errors.split_last().unwrap();
    assert!(refusal.contains("transformer is quarantined after repeated failures"), "{errors:#?}");
    assert!(refusal.contains("transformer exploded"), "it names the last failure: {refusal}");
    assert!(panics.len() >= 5 && panics.iter().all(|error| error.contains("exploded")), "{errors:#?}");
    let fetched = handle.counters().extractor.snapshot().received;
    assert_eq!(fetched, panics.len() as u64, "the refused run fetched nothing");
}

// A stage error fails the run cleanly with a readable reason and publishes the outcome.
#[actix::test]
async fn stage_error_fails_the_run_and_is_announced() {
    let bus = EventBus::default();
    let mut events = bus.subscribe();
    let ledger = Arc::new(MemoryLedger::default());
    let script = Arc::new(Mutex::new(Script { fail: true, ..Script::default() }));
    let (_root, handle) = test_pipeline(ledger, bus, script);
    settle().await;
    let record = handle.run_to_completion(Trigger::Manual, RunOptions::default()).await.unwrap();
    assert_eq!(record.error.as_deref(), Some("upstream: connection refused"));
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        kinds.push(match &*event {
            Event::RunStarted { .. } => "started",
            Event::RunFinished { status: RunStatus::Failed, .. } => "failed",
            _ => "other",
        });
    }
    assert_eq!(kinds, ["started", "failed"]);
}

// ---------------------------------------------------------------- scheduling

/// Records the calendar instant of every run the scheduler starts.
struct Recorder {
    clock: TokioClock,
    fired: Arc<Mutex<Vec<DateTime<Utc>>>>,
}

#[async_trait(?Send)]
impl Extract for Recorder {
    type Output = ();
    async fn extract(&self, _run: &RunContext, _counters: &StageCounters) -> Result<(), StageError> {
        self.fired.lock().unwrap().push(self.clock.now());
        Ok(())
    }
}

struct Nothing;

impl Transform for Nothing {
    type Input = ();
    type Output = ();
    fn transform(&self, _: (), _run: &RunContext, _counters: &StageCounters) -> Result<(), StageError> {
        Ok(())
    }
}

#[async_trait(?Send)]
impl Load for Nothing {
    type Input = ();
    async fn load(&self, _: (), _run: &RunContext, _counters: &StageCounters) -> Result<LoadReport, StageError> {
        Ok(LoadReport::default())
    }
}

struct Harness {
    fired: Arc<Mutex<Vec<DateTime<Utc>>>>,
    _root: Addr<Supervisor>,
    _scheduler: Addr<Scheduler>,
}

fn schedule_harness(
    origin: &str,
    spec: &str,
    misfire: MisfirePolicy,
    windows: Vec<MaintenanceWindow>,
    ledger: Arc<MemoryLedger>,
) -> Harness {
    let clock = TokioClock::starting_at(at(origin));
    let fired = Arc::new(Mutex::new(Vec::new()));
    let deps =
        PipelineDeps { ledger: ledger.clone(), events: EventBus::default(), settings: RunnerSettings::default() };
    let recorder = Recorder { clock, fired: fired.clone() };
    let (spec_child, handle) = pipeline("items", recorder, Nothing, Nothing, deps);
    let root = Supervisor::new("root").child(spec_child).start();
    let schedule = Schedule::parse(spec, "items", Tz::UTC, Duration::ZERO).unwrap();
    let settings = Arc::new(SchedulerSettings { windows, ..SchedulerSettings::default() });
    let scheduler =
        Scheduler::new(vec![ScheduledPipeline { schedule, misfire, handle }], settings, Arc::new(clock), ledger)
            .start();
    Harness { fired, _root: root, _scheduler: scheduler }
}

/// Tokio rounds timer deadlines up to its next millisecond tick, so a slot fires within a
/// millisecond after its instant — never before it (firing early would serve one slot twice).
fn assert_fired_at(fired: &[DateTime<Utc>], expected: &[DateTime<Utc>]) {
    assert_eq!(fired.len(), expected.len(), "fired {fired:?}, expected {expected:?}");
    for (fired, expected) in fired.iter().zip(expected) {
        let late = *fired - *expected;
        assert!(
            late >= chrono::Duration::zero() && late <= chrono::Duration::milliseconds(2),
            "fired {fired}, expected {expected}"
        );
    }
}

fn ran_before(ledger: &MemoryLedger, pipeline: &str, started: &str) {
    let when = at(started);
    ledger.insert(RunRecord {
        id: 1,
        pipeline: pipeline.into(),
        status: RunStatus::Succeeded,
        trigger: Trigger::Schedule,
        attempt: 1,
        owner: None,
        slot: None,
        epoch: 1,
        queued_at: when,
        started_at: Some(when),
        finished_at: Some(when),
        lease_until: None,
        counts: RunCounts::default(),
        error: None,
        failure: None,
        notes: Vec::new(),
    });
}

// A cron schedule fires at exactly its slots under paused time.
#[actix::test]
async fn cron_schedule_fires_at_the_right_instants() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    ran_before(&ledger, "items", "2026-01-01T00:00:00Z");
    let harness = schedule_harness("2026-01-01T00:01:00Z", "0 */5 * * * *", MisfirePolicy::FireOnce, vec![], ledger);
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let fired = harness.fired.lock().unwrap().clone();
    let expected: Vec<_> =
        ["00:05:00", "00:10:00", "00:15:00"].iter().map(|t| at(&format!("2026-01-01T{t}Z"))).collect();
    assert_fired_at(&fired, &expected);
}

// A hashed schedule fires at its stable, resolved instants.
#[actix::test]
async fn hashed_schedule_fires_at_its_resolved_instants() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    ran_before(&ledger, "items", "2026-01-01T00:00:00Z");
    let spec = "H H/30 * * * *";
    let resolved = Schedule::parse(spec, "items", Tz::UTC, Duration::ZERO).unwrap();
    let harness = schedule_harness("2026-01-01T00:00:00Z", spec, MisfirePolicy::FireOnce, vec![], ledger);
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let fired = harness.fired.lock().unwrap().clone();
    let mut expected = Vec::new();
    let mut cursor = at("2026-01-01T00:00:00Z");
    while let Some(slot) = resolved.next_slot_after(cursor).filter(|slot| *slot <= at("2026-01-01T02:00:00Z")) {
        expected.push(slot);
        cursor = slot;
    }
    assert_eq!(expected.len(), 4, "every 30 minutes for 2 hours");
    assert_fired_at(&fired, &expected);
    // The hashed second is the same in every slot.
    assert!(fired.iter().all(|instant| instant.timestamp() % 60 == fired[0].timestamp() % 60));
}

// An overdue pipeline runs once at start-up, not once per missed slot; `skip` waits instead.
#[actix::test]
async fn misfire_fires_once_at_start_up() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    ran_before(&ledger, "items", "2026-01-01T00:00:00Z");
    // Ten slots were missed between 00:00 and 00:52.
    let harness = schedule_harness("2026-01-01T00:52:30Z", "0 */5 * * * *", MisfirePolicy::FireOnce, vec![], ledger);
    tokio::time::sleep(Duration::from_secs(200)).await;
    let fired = harness.fired.lock().unwrap().clone();
    assert_fired_at(&fired, &[at("2026-01-01T00:52:30Z"), at("2026-01-01T00:55:00Z")]);

    let ledger = Arc::new(MemoryLedger::default());
    ran_before(&ledger, "items", "2026-01-01T00:00:00Z");
    let harness = schedule_harness("2026-01-01T00:52:30Z", "0 */5 * * * *", MisfirePolicy::Skip, vec![], ledger);
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_fired_at(&harness.fired.lock().unwrap(), &[at("2026-01-01T00:55:00Z")]);
}

// Slots inside a maintenance window fire once, at the window's end.
#[actix::test]
async fn maintenance_window_holds_runs_back() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    ran_before(&ledger, "items", "2026-01-01T00:00:00Z");
    let window = MaintenanceWindow::parse("daily 00:07-00:21", Tz::UTC).unwrap();
    let harness =
        schedule_harness("2026-01-01T00:01:00Z", "0 */5 * * * *", MisfirePolicy::FireOnce, vec![window], ledger);
    tokio::time::sleep(Duration::from_secs(25 * 60)).await;
    let fired = harness.fired.lock().unwrap().clone();
    let expected: Vec<_> =
        ["00:05:00", "00:21:00", "00:25:00"].iter().map(|t| at(&format!("2026-01-01T{t}Z"))).collect();
    assert_fired_at(&fired, &expected);
}

// Runs left `running` by a dead process are abandoned at start-up and run again.
#[actix::test]
async fn abandoned_runs_are_recovered_and_rerun() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    let long_ago = at("2026-01-01T00:00:00Z");
    ledger.insert(RunRecord {
        id: 1,
        pipeline: "items".into(),
        status: RunStatus::Running,
        trigger: Trigger::Schedule,
        attempt: 1,
        owner: Some("dead-host:1".into()),
        slot: None,
        epoch: 1,
        queued_at: long_ago,
        started_at: Some(long_ago),
        finished_at: None,
        lease_until: Some(Utc::now() + chrono::Duration::hours(1)),
        counts: RunCounts::default(),
        error: None,
        failure: None,
        notes: Vec::new(),
    });
    ledger.mark_dead("dead-host:1");
    let clock = TokioClock::starting_at(at("2026-01-01T00:01:00Z"));
    let fired = Arc::new(Mutex::new(Vec::new()));
    let deps =
        PipelineDeps { ledger: ledger.clone(), events: EventBus::default(), settings: RunnerSettings::default() };
    let (spec, handle) = pipeline("items", Recorder { clock, fired: fired.clone() }, Nothing, Nothing, deps);
    let _root = Supervisor::new("root").child(spec).start();
    let schedule = Schedule::parse("never", "items", Tz::UTC, Duration::ZERO).unwrap();
    let _scheduler = Scheduler::new(
        vec![ScheduledPipeline { schedule, misfire: MisfirePolicy::FireOnce, handle }],
        Arc::default(),
        Arc::new(clock),
        ledger.clone(),
    )
    .start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = ledger.runs();
    assert_eq!(runs[0].status, RunStatus::Abandoned);
    assert_eq!((runs[1].status, runs[1].attempt, runs[1].trigger), (RunStatus::Succeeded, 2, Trigger::Recovery));
    assert_eq!(fired.lock().unwrap().len(), 1);
    assert!(ledger.last_run("items").await.unwrap().is_some());
}

/// An extractor that logs when it starts and ends, taking `work` of (paused) time.
struct Timed {
    name: &'static str,
    work: Duration,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait(?Send)]
impl Extract for Timed {
    type Output = ();
    async fn extract(&self, _run: &RunContext, _counters: &StageCounters) -> Result<(), StageError> {
        self.log.lock().unwrap().push(format!("{} start", self.name));
        tokio::time::sleep(self.work).await;
        self.log.lock().unwrap().push(format!("{} end", self.name));
        Ok(())
    }
}

// Catch-up runs at start-up go one after another in the given (dependency) order: a pipeline
// that refers to another's data never reads before that data has loaded.
#[actix::test]
async fn catch_up_runs_go_in_dependency_order() {
    tokio::time::pause();
    let ledger = Arc::new(MemoryLedger::default());
    let log = Arc::new(Mutex::new(Vec::new()));
    let deps =
        PipelineDeps { ledger: ledger.clone(), events: EventBus::default(), settings: RunnerSettings::default() };
    let mut root = Supervisor::new("root");
    let mut scheduled = Vec::new();
    for (name, work) in [("items", 30), ("npcs", 1), ("tower", 1)] {
        let extract = Timed { name, work: Duration::from_secs(work), log: log.clone() };
        let (spec, handle) = pipeline(name, extract, Nothing, Nothing, deps.clone());
        root = root.child(spec);
        let schedule = Schedule::parse("0 0 0 * * *", name, Tz::UTC, Duration::ZERO).unwrap();
        scheduled.push(ScheduledPipeline { schedule, misfire: MisfirePolicy::FireOnce, handle });
    }
    let _root = root.start();
    let clock = TokioClock::starting_at(at("2026-01-01T12:00:00Z"));
    let _scheduler = Scheduler::new(scheduled, Arc::new(SchedulerSettings::default()), Arc::new(clock), ledger).start();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        log.lock().unwrap().clone(),
        ["items start", "items end", "npcs start", "npcs end", "tower start", "tower end"]
    );
}
