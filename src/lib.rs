//! Hayloft, the application: configuration, database, pipelines and front doors plugged into
//! the engine (`hayloft-actors`).

// The sample-data generator builds one 70-key JSON object literal per item.
#![recursion_limit = "256"]

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod demo_data;
pub mod demo_pages;
pub mod devices;
pub mod discord;
pub mod failpoint;
pub mod graphql;
pub mod metrics;
pub mod notify;
pub mod pipelines;
pub mod ssh;
pub mod telemetry;
pub mod upstream;
pub mod web;
