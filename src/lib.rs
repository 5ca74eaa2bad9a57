//! Hayloft, the application: configuration, database, pipelines and front doors plugged into
//! the engine (`hayloft-actors`).

// The sample-data generator builds one 70-key JSON object literal per item.
#![recursion_limit = "256"]

pub mod app;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod db;
pub mod failpoint;
pub mod front_doors;
pub mod import;
pub mod metrics;
pub mod notify;
pub mod pipelines;
pub mod secret;
pub mod telemetry;
pub mod upstream;

/// The commit this binary was built from (see `build.rs`), `unknown` when the build could not
/// tell.
pub const COMMIT: &str = env!("HAYLOFT_COMMIT");

/// What `hayloft --version` prints after the name: the version and the commit.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("HAYLOFT_COMMIT"), ")");
