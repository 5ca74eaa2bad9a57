//! Errors the API returns, each with a stable `extensions.code` clients can branch on.

use async_graphql::{Error, ErrorExtensions};

/// Stable error codes (`extensions.code`).
pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const TOO_COMPLEX: &str = "TOO_COMPLEX";
    pub const TIMEOUT: &str = "TIMEOUT";
    pub const INTERNAL: &str = "INTERNAL";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// A request body over `max_body_bytes` (HTTP 413).
    pub const TOO_LARGE: &str = "TOO_LARGE";
}

/// An error with `extensions.code` set.
pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

pub fn bad_input(message: impl Into<String>) -> Error {
    coded(code::BAD_USER_INPUT, message)
}

/// A database failure, logged in full and reported without internals.
pub fn database(error: impl std::fmt::Display) -> Error {
    tracing::warn!(%error, "GraphQL query failed in the database");
    coded(code::UNAVAILABLE, format!("the database could not answer: {error}"))
}
