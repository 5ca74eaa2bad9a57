//! Wall-clock time for the scheduler, swappable in tests.
//!
//! Cron specs need calendar time (`DateTime`), while actix timers run on tokio's monotonic clock.
//! [`TokioClock`] derives calendar time from tokio's clock, so a test that pauses tokio time
//! (`tokio::time::pause`) moves both together and sees schedules fire at exact instants.

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Calendar time that advances with tokio's (possibly paused) clock, from a chosen origin.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        Self { origin, started: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.started);
        self.origin + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}

/// Another clock shifted by a fixed offset: how tests and the cluster benchmark give nodes
/// skewed clocks. Slots are named by the clock that fires them, so a skewed node fires a slot
/// early or late, and the ledger still runs it once.
#[derive(Clone)]
pub struct OffsetClock {
    pub inner: SharedClock,
    pub offset: chrono::Duration,
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.now() + self.offset
    }
}
