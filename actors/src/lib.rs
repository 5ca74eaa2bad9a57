//! Hayloft's engine: a small actor framework on actix for ETL pipelines.
//!
//! It knows nothing about any upstream site, database table or front door. The application
//! plugs in concrete stages ([`pipeline::Extract`], [`pipeline::Transform`], [`pipeline::Load`]), a
//! [`ledger::Ledger`] implementation and its own actors, and gets:
//!
//! * [`supervisor`]: per-child restart policies, restart limits, quarantine with backoff,
//!   escalation, panics caught per actor, a live tree snapshot;
//! * [`pipeline`]: typed extract → transform → load stages over bounded mailboxes, driven by a
//!   runner that records every run in the ledger and never overlaps runs of one pipeline;
//! * [`scheduler`]: cron, hashed and interval schedules ([`schedule`]), jitter, maintenance
//!   windows, misfire handling and recovery of abandoned runs;
//! * [`events`]: the event bus every front door listens to;
//! * [`command`]: the command core's typed requests and replies, shared by every front door.

pub mod clock;
pub mod command;
pub mod events;
pub mod ledger;
pub mod memory_ledger;
pub mod pipeline;
pub mod schedule;
pub mod scheduler;
pub mod storage;
pub mod supervisor;
