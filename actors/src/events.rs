//! The event bus: run started/finished, change sets, actor restarts, log lines.
//!
//! The bus is a bounded broadcast ring, not a mailbox: publishing never waits and never fails,
//! whoever publishes (an actor, the tracing layer, a watcher task). Each subscriber reads at its
//! own pace; one that falls more than [`EVENT_BUS_CAPACITY`] events behind skips the oldest and is
//! told how many it missed ([`BusItem::Missed`]), so a slow subscriber can never slow the engine.
//! Actors subscribe with `ctx.add_stream(bus.stream())` in `started`, so a restarted actor
//! subscribes again and a stopped one unsubscribes by itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};

use crate::ledger::{RunCounts, RunId, RunStatus, Trigger};

/// How many events a subscriber may fall behind before it starts missing some.
pub const EVENT_BUS_CAPACITY: usize = 1024;

/// One change to one loaded record, as recorded in a run's change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub entity: String,
    pub key: String,
    pub op: ChangeOp,
    /// Names of the fields that changed (updates only).
    pub fields: Vec<String>,
    /// What the row is called (an item's name), when its table says; for people reading the
    /// feed, never for matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }
}

/// Everything the engine announces.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: RunId,
        pipeline: String,
        trigger: Trigger,
        attempt: i32,
    },
    RunFinished {
        run_id: RunId,
        pipeline: String,
        status: RunStatus,
        counts: RunCounts,
        duration_ms: i64,
        error: Option<String>,
    },
    Changes {
        run_id: RunId,
        pipeline: String,
        #[serde(serialize_with = "serialize_changes")]
        changes: Arc<[Change]>,
    },
    ActorRestarted {
        actor: String,
        reason: String,
        restarts: u64,
    },
    ActorQuarantined {
        actor: String,
        reason: String,
        retry_in_ms: u64,
        level: u32,
    },
    Log(LogLine),
}

/// A log record as shown by `logs -f`, the dashboard and subscriptions.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub level: String,
    pub actor: Option<String>,
    pub message: String,
    pub fields: String,
}

/// What a subscriber's stream yields.
#[derive(Debug, Clone)]
pub enum BusItem {
    Event(Arc<Event>),
    /// The subscriber fell behind and this many events were skipped.
    Missed(u64),
}

/// A cheap, cloneable handle on the bus.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(EVENT_BUS_CAPACITY)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Announces an event; never blocks, and an event nobody listens to is simply dropped.
    pub fn publish(&self, event: Event) {
        // An error only means there is no subscriber right now, which is fine.
        let _ = self.sender.send(Arc::new(event));
    }

    /// A raw receiver, for code that wants to `recv()` itself.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// A stream of events, suitable for `ctx.add_stream` or a GraphQL subscription.
    pub fn stream(&self) -> impl Stream<Item = BusItem> + Unpin + Send + 'static {
        BroadcastStream::new(self.sender.subscribe()).map(|item| match item {
            Ok(event) => BusItem::Event(event),
            Err(BroadcastStreamRecvError::Lagged(missed)) => BusItem::Missed(missed),
        })
    }

    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

fn serialize_changes<S: serde::Serializer>(changes: &Arc<[Change]>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(changes.iter())
}
