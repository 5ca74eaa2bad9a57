//! The GraphQL API: every loaded entity and its relations in both directions (served by
//! per-request batchers, so the statements of a request grow with its depth, not with the rows), the
//! operations data, one mutation and live subscriptions. The schema is built once per process,
//! by the first request that needs it, and shared by every HTTP worker; see [`http`] for how it
//! is served and protected.
//!
//! Nothing here names a source: each source declares its entities next to its rows (see
//! [`entity`]), and the pipeline registry lists them (`EntityQuery`).

pub mod budget;
pub mod entity;
pub mod errors;
pub mod http;
pub mod lists;
pub mod loaders;
pub mod ops;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{MergedObject, Schema, ServerError, ServerResult, Variables};
use serde::{Deserialize, Serialize};

pub use ops::{Admin, Ops};

/// The query root: entities and operations.
#[derive(MergedObject, Default)]
pub struct Query(crate::pipelines::registry::EntityQuery, ops::OpsQuery);

pub type HayloftSchema = Schema<Query, ops::Mutation, ops::SubscriptionRoot>;

/// Limits that keep one request from taking the server down. `[graphql]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlSettings {
    /// Deepest selection nesting allowed (fragments expanded; introspection has its own bound).
    pub max_depth: usize,
    /// Largest complexity (one per field, lists counted once) allowed.
    pub max_complexity: usize,
    /// Most aliased fields in one document, fragments expanded.
    pub max_aliases: usize,
    /// Most fragment spreads in one document, as written. With `max_complexity` (which also
    /// bounds the fields a document expands to) this keeps a document's checks linear in its
    /// size: see [`budget`].
    pub max_fragment_spreads: usize,
    /// Past this the client gets TIMEOUT. On PostgreSQL the request is cancelled; on SQLite
    /// it runs to its end (a SQLite query cannot be dropped in flight) but keeps its place
    /// in `max_concurrent`, so abandoned work stays bounded.
    #[serde(with = "humantime_serde")]
    pub timeout: std::time::Duration,
    /// Requests executing at once, per lane: small documents (at most `small_fields` fields
    /// and `small_depth` levels, fragments expanded) and large ones each have their own, so a
    /// flood of heavy queries never queues a small one behind it.
    pub max_concurrent: usize,
    /// Requests waiting for a place, per lane; one more is refused at once with UNAVAILABLE.
    pub max_queued: usize,
    /// How long a request may wait for a place before it is refused with UNAVAILABLE.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: std::time::Duration,
    /// The most fields (after expansion) a small document has.
    pub small_fields: usize,
    /// The deepest a small document is: a list's rows multiply the cost of every level below
    /// it, so depth, more than field count, tells a heavy query.
    pub small_depth: usize,
    /// Most requests in one batch (a JSON array of requests).
    pub max_batch: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Origins allowed to call the API from a browser (`["*"]` for any); empty: same origin only.
    pub cors_origins: Vec<String>,
    /// How long GET answers may be cached by browsers and CDNs.
    #[serde(with = "humantime_serde")]
    pub cache_max_age: std::time::Duration,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 10_000,
            max_aliases: 30,
            max_fragment_spreads: 500,
            timeout: std::time::Duration::from_secs(10),
            max_concurrent: 2,
            max_queued: 32,
            queue_timeout: std::time::Duration::from_secs(5),
            small_fields: 50,
            small_depth: 3,
            max_batch: 10,
            max_body_bytes: 64 * 1024,
            cors_origins: Vec::new(),
            cache_max_age: std::time::Duration::from_secs(60),
        }
    }
}

impl GraphqlSettings {
    /// The limits every document is measured against before validation.
    pub fn budget(&self) -> budget::Budget {
        budget::Budget {
            max_fields: self.max_complexity as u64,
            max_aliases: self.max_aliases as u64,
            max_depth: self.max_depth as u64,
            max_spreads: self.max_fragment_spreads as u64,
        }
    }
}

/// Builds the schema. `ops` is absent outside `hayloft serve` (e.g. for `hayloft schema`).
pub fn build(db: Option<crate::db::Database>, ops: Option<Ops>, settings: &GraphqlSettings) -> HayloftSchema {
    // No `limit_depth` here: async-graphql's counts introspection too, which refused the query
    // schema-driven tools send; the budget measures depth before validation, with
    // introspection bounded on its own terms (see `budget`).
    let mut builder = Schema::build(Query::default(), ops::Mutation, ops::SubscriptionRoot)
        .limit_complexity(settings.max_complexity)
        .extension(DocumentBudget(settings.budget()));
    if let Some(db) = db {
        builder = builder.data(db);
    }
    if let Some(ops) = ops {
        builder = builder.data(ops);
    }
    builder.finish()
}

/// The schema in SDL, as `hayloft schema` prints it.
pub fn sdl() -> String {
    build(None, None, &GraphqlSettings::default()).sdl()
}

/// Measures every document right after it is parsed (HTTP and WebSocket alike) and refuses one
/// over its budget before validation walks it; see [`budget`].
struct DocumentBudget(budget::Budget);

impl ExtensionFactory for DocumentBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentBudgetExtension(self.0))
    }
}

struct DocumentBudgetExtension(budget::Budget);

#[async_trait::async_trait]
impl Extension for DocumentBudgetExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        budget::measure(&document, self.0).map_err(over_budget)?;
        Ok(document)
    }
}

/// The error for a document over its budget: TOO_COMPLEX.
pub fn over_budget(refusal: budget::OverBudget) -> ServerError {
    let mut error = ServerError::new(refusal.to_string(), None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", errors::code::TOO_COMPLEX);
    error.extensions = Some(extensions);
    error
}
