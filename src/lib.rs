//! Hayloft, the application: configuration, database, pipelines and front doors plugged into
//! the engine (`hayloft-actors`).

pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod pipelines;
pub mod telemetry;
pub mod web;
