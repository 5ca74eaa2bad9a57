//! The GraphQL API: every loaded entity and its relations in both directions (served by
//! per-request batchers, so the statements of a request grow with its depth, not with the rows), the
//! operations data, one mutation and live subscriptions. The schema is built once per process,
//! by the first request that needs it, and shared by every HTTP worker; see [`http`] for how it
//! is served and protected.

pub mod entities;
pub mod errors;
pub mod http;
pub mod lists;
pub mod loaders;
pub mod ops;
pub mod roots;

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{MergedObject, Schema, ServerError, ServerResult, Variables};
use serde::{Deserialize, Serialize};

pub use ops::{Admin, Ops};

/// The query root: entities and operations.
#[derive(MergedObject, Default)]
pub struct Query(roots::EntityQuery, ops::OpsQuery);

pub type HayloftSchema = Schema<Query, ops::Mutation, ops::SubscriptionRoot>;

/// Limits that keep one request from taking the server down. `[graphql]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlSettings {
    /// Deepest selection nesting allowed.
    pub max_depth: usize,
    /// Largest complexity (one per field, lists counted once) allowed.
    pub max_complexity: usize,
    /// Most aliased fields in one document.
    pub max_aliases: usize,
    /// A request still running after this is cancelled with a TIMEOUT error.
    #[serde(with = "humantime_serde")]
    pub timeout: std::time::Duration,
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
            timeout: std::time::Duration::from_secs(10),
            max_body_bytes: 64 * 1024,
            cors_origins: Vec::new(),
            cache_max_age: std::time::Duration::from_secs(60),
        }
    }
}

/// Builds the schema. `ops` is absent outside `hayloft serve` (e.g. for `hayloft schema`).
pub fn build(db: Option<crate::db::Database>, ops: Option<Ops>, settings: &GraphqlSettings) -> HayloftSchema {
    let mut builder = Schema::build(Query::default(), ops::Mutation, ops::SubscriptionRoot)
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .extension(AliasLimit(settings.max_aliases));
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

/// Refuses documents with more than the allowed number of aliased fields (aliases let one
/// small document ask for the same expensive field many times).
struct AliasLimit(usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension(self.0))
    }
}

struct AliasLimitExtension(usize);

fn count_aliases(selections: &SelectionSet, document: &ExecutableDocument, depth: usize) -> usize {
    // Fragments can spread each other; the depth limit runs later, so bound the walk here.
    if depth > 64 {
        return 0;
    }
    selections
        .items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some())
                    + count_aliases(&field.node.selection_set.node, document, depth + 1)
            }
            Selection::InlineFragment(fragment) => {
                count_aliases(&fragment.node.selection_set.node, document, depth + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |fragment| count_aliases(&fragment.node.selection_set.node, document, depth + 1)),
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases: usize = document
            .operations
            .iter()
            .map(|(_, operation)| count_aliases(&operation.node.selection_set.node, &document, 0))
            .sum();
        if aliases > self.0 {
            let mut error =
                ServerError::new(format!("the query uses {aliases} aliases; at most {} are allowed", self.0), None);
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", errors::code::TOO_COMPLEX);
            error.extensions = Some(extensions);
            return Err(error);
        }
        Ok(document)
    }
}
