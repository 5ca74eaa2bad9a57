//! The ways in: every front door is a thin adapter over the command core
//! ([`crate::commands::CommandCore`]) or the read-only database views, and owns its settings.
//!
//! - [`web`]: the HTTP server — status dashboard, health and metrics, the change feed, and the
//!   GraphQL endpoint mounted from [`graphql`];
//! - [`graphql`]: queries over every loaded entity, operations on pipelines and runs, live
//!   subscriptions;
//! - [`ssh`]: the command line over SSH;
//! - [`discord`]: slash commands (the gateway behind a trait, simulated in tests);
//! - [`devices`]: Stream Deck buttons and serial devices.

pub mod devices;
pub mod discord;
pub mod graphql;
pub mod ssh;
pub mod web;
