//! Hayloft's integration tests: one binary, the real `hayloft` executable, a fresh database per
//! test (see `helpers`). Run on PostgreSQL with `HAYLOFT_TEST_DATABASE=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod cli;
mod cluster;
mod container;
mod crash;
mod dashboard;
mod devices;
mod discord;
mod faults;
mod graphql;
mod graphql_abuse;
mod import;
mod items;
mod mutations;
mod notify;
mod pets;
mod quests;
mod readme;
mod schema;
mod serve;
mod sources;
mod ssh;
mod upstream;
mod watch;
