//! The outbox as the database layer sees it: messages waiting to be delivered, each a channel
//! and an opaque payload. Which messages a run deserves is not decided here: an [`Announcer`]
//! (the notifications component) decides, and the load and the ledger write what it decided
//! inside their own transactions, so a message exists exactly when what it announces does.

use chrono::NaiveDateTime;
use diesel::Insertable;
use hayloft_actors::ledger::{RunCounts, RunRecord};

use super::schema::outbox;

/// How many of a load's new records are named to the [`Announcer`], first written first.
pub const NEW_NAMES: usize = 3;

/// One message to deliver: where to, and what (the payload is the announcer's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub channel: String,
    pub payload: String,
}

/// What one load changed, as its transaction is about to commit.
#[derive(Debug, Clone, Copy)]
pub struct ChangeSummary<'a> {
    pub pipeline: &'a str,
    pub run_id: i64,
    pub counts: RunCounts,
    /// The first few ([`NEW_NAMES`]) inserted records, by their display name.
    pub new_names: &'a [String],
    /// From the start of the run to this load.
    pub elapsed_ms: i64,
}

/// Decides which messages a run's changes and its result deserve. Implemented outside the
/// database layer; called inside the transactions that write those changes and that result.
pub trait Announcer: Send + Sync + 'static {
    /// Messages for a load's changes, written in the load's transaction: a crash after that
    /// commit cannot lose them, and a retry that finds nothing left to write adds none.
    fn on_changes(&self, summary: &ChangeSummary<'_>) -> Vec<OutboxEntry>;

    /// Messages for how a run ended (a failure, a refusal), written with the result.
    fn on_result(&self, run: &RunRecord) -> Vec<OutboxEntry>;
}

/// An outbox row ready to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox, treat_none_as_default_value = false)]
pub struct NewOutboxRow {
    pub channel: String,
    pub payload: String,
    pub run_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
}

impl NewOutboxRow {
    /// The row of `entry`, due at once.
    pub fn due_now(entry: OutboxEntry, run_id: Option<i64>, now: NaiveDateTime) -> Self {
        Self {
            channel: entry.channel,
            payload: entry.payload,
            run_id,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            delivered_at: None,
            last_error: None,
        }
    }

    pub fn all_due_now(entries: Vec<OutboxEntry>, run_id: Option<i64>, now: NaiveDateTime) -> Vec<Self> {
        entries.into_iter().map(|entry| Self::due_now(entry, run_id, now)).collect()
    }
}
