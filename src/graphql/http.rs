//! Serving the schema over HTTP: `POST /graphql` and `GET /graphql?query=…` (queries only, with
//! `Cache-Control` and an `ETag` so a static site generator or CDN can cache them), WebSocket
//! subscriptions on `/graphql` (graphql-transport-ws and the older graphql-ws), and GraphiQL at
//! `/graphiql`. Every request gets a body size limit and a timeout, and every error a stable
//! `extensions.code`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{guard, web, HttpRequest, HttpResponse};
use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError};
use async_graphql_actix_web::GraphQLSubscription;
use sha2::{Digest, Sha256};

use super::errors::code;
use super::loaders::Loaders;
use super::{Admin, GraphqlSettings, HayloftSchema};
use crate::db::Database;

/// The schema, built by the first request that needs it and then shared by every worker. An
/// idle server does not hold it: its type registry is several megabytes.
#[derive(Clone)]
pub struct LazySchema {
    schema: Arc<std::sync::OnceLock<HayloftSchema>>,
    db: Database,
    ops: super::Ops,
    settings: Arc<GraphqlSettings>,
}

impl LazySchema {
    pub fn new(db: Database, ops: super::Ops, settings: Arc<GraphqlSettings>) -> Self {
        Self { schema: Arc::default(), db, ops, settings }
    }

    pub fn get(&self) -> &HayloftSchema {
        self.schema.get_or_init(|| super::build(Some(self.db.clone()), Some(self.ops.clone()), &self.settings))
    }
}

/// What the GraphQL routes share across workers.
#[derive(Clone)]
pub struct GraphqlState {
    pub schema: LazySchema,
    pub db: Database,
    pub settings: Arc<GraphqlSettings>,
    /// `HAYLOFT_ADMIN_TOKEN`; `None` disables the mutation for everyone.
    pub admin_token: Option<Arc<str>>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Marks a request that came as a GET: it may only query.
#[derive(Clone, Copy)]
pub struct ViaGet;

/// Whether the request carries `Authorization: Bearer <the admin token>`.
fn is_admin(state: &GraphqlState, request: &HttpRequest) -> bool {
    let Some(expected) = &state.admin_token else { return false };
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Compare digests: the time taken does not depend on how much of the token matched.
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(expected.as_bytes())
}

fn prepare(state: &GraphqlState, request: Request, admin: bool) -> Request {
    request.data(Loaders::new(&state.db)).data(Admin(admin))
}

/// Gives every error a stable `extensions.code`: limits are TOO_COMPLEX, errors before
/// execution (syntax, validation) BAD_USER_INPUT, anything else INTERNAL.
fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let has_code = error.extensions.as_ref().is_some_and(|extensions| extensions.get("code").is_some());
        if has_code {
            continue;
        }
        let message = error.message.to_ascii_lowercase();
        let code = if message.contains("nested too deep") || message.contains("too complex") {
            code::TOO_COMPLEX
        } else if error.path.is_empty() {
            code::BAD_USER_INPUT
        } else {
            code::INTERNAL
        };
        error.extensions.get_or_insert_with(Default::default).set("code", code);
    }
    response
}

fn error_response(code: &'static str, message: String) -> Response {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", code);
    Response::from_errors(vec![error])
}

/// The header asking for the request's SQL statement count in `extensions.sqlStatements`. The
/// count is the process-wide difference over the request: exact when requests do not overlap
/// (tests, benchmarks), an upper bound otherwise.
pub const STATEMENTS_HEADER: &str = "hayloft-statements";

/// Runs one request within the time limit.
async fn execute(state: &GraphqlState, request: Request, count_statements: bool) -> Response {
    let before = crate::db::statements::started();
    let started = std::time::Instant::now();
    // The request runs as its own task and is never cancelled mid-query: dropping a SQLite
    // query in flight panics the worker (diesel-async's sync wrapper blocks in place on drop,
    // which actix's single-threaded runtime forbids). Past the time limit the client gets
    // TIMEOUT at once and the task finishes on its own; a client that disconnects likewise
    // only drops the handle. Boxed: a schema this size makes large resolver futures.
    let schema = state.schema.get().clone();
    let task = actix_web::rt::spawn(Box::pin(async move { schema.execute(request).await }));
    let mut response = match tokio::time::timeout(state.settings.timeout, task).await {
        Ok(Ok(response)) => with_codes(response),
        Ok(Err(error)) => {
            tracing::error!(%error, "a GraphQL request failed");
            error_response(code::INTERNAL, "the request failed inside the server; see the server log".to_owned())
        }
        Err(_) => error_response(
            code::TIMEOUT,
            format!("the request took longer than {:?}; its answer was abandoned", state.settings.timeout),
        ),
    };
    let outcome = if response.errors.is_empty() { "ok" } else { "error" };
    let labels = vec![("outcome", outcome.to_owned())];
    state.metrics.observe(crate::metrics::GRAPHQL_DURATION, labels, started.elapsed().as_secs_f64());
    if count_statements {
        let statements = crate::db::statements::started().saturating_sub(before);
        response.extensions.insert("sqlStatements".to_owned(), async_graphql::Value::from(statements));
    }
    response
}

fn wants_statements(request: &HttpRequest) -> bool {
    request.headers().get(STATEMENTS_HEADER).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"on"))
}

fn json(status: actix_web::http::StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status).content_type("application/json").body(bytes),
        Err(error) => HttpResponse::InternalServerError().body(format!("cannot encode the answer: {error}")),
    }
}

fn bad_request(message: String) -> HttpResponse {
    json(actix_web::http::StatusCode::BAD_REQUEST, &error_response(code::BAD_USER_INPUT, message))
}

async fn post(state: web::Data<GraphqlState>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => return bad_request(format!("the body is not a GraphQL request: {error}")),
    };
    let admin = is_admin(&state, &request);
    let count = wants_statements(&request);
    let response = match batch {
        BatchRequest::Single(single) => {
            BatchResponse::Single(execute(&state, prepare(&state, single, admin), count).await)
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for single in requests {
                responses.push(execute(&state, prepare(&state, single, admin), count).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    json(actix_web::http::StatusCode::OK, &response)
}

async fn get(state: web::Data<GraphqlState>, request: HttpRequest) -> HttpResponse {
    let single = match async_graphql::http::parse_query_string(request.query_string()) {
        Ok(single) => single,
        Err(error) => return bad_request(format!("GET /graphql needs ?query=…: {error}")),
    };
    let admin = is_admin(&state, &request);
    let response = execute(&state, prepare(&state, single, admin).data(ViaGet), wants_statements(&request)).await;
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(error) => return HttpResponse::InternalServerError().body(format!("cannot encode the answer: {error}")),
    };
    let etag = format!("\"{}\"", &format!("{:x}", Sha256::digest(&body))[..32]);
    let cacheable = response.errors.is_empty() && request.headers().get(header::AUTHORIZATION).is_none();
    let cache_control = if cacheable {
        format!("public, max-age={}", state.settings.cache_max_age.as_secs())
    } else {
        "no-store".to_owned()
    };
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim().trim_start_matches("W/") == etag));
    if cacheable && fresh {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .finish();
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .body(body)
}

async fn subscribe(
    state: web::Data<GraphqlState>,
    request: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let mut data = async_graphql::Data::default();
    data.insert(Loaders::new(&state.db));
    data.insert(Admin(is_admin(&state, &request)));
    GraphQLSubscription::new(state.schema.get().clone()).with_data(data).start(&request, payload)
}

async fn graphiql() -> HttpResponse {
    let page =
        async_graphql::http::GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql").finish();
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

fn cors(settings: &GraphqlSettings) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::IF_NONE_MATCH])
        .expose_headers([header::ETAG])
        .max_age(3600);
    for origin in &settings.cors_origins {
        cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
    }
    cors
}

/// The GraphQL routes. Without configured origins no CORS headers are sent (same origin only).
pub fn routes(state: GraphqlState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let limit = state.settings.max_body_bytes;
        let cors_enabled = !state.settings.cors_origins.is_empty();
        let cors = cors(&state.settings);
        config
            .app_data(web::Data::new(state))
            .service(
                web::resource("/graphql")
                    .app_data(web::PayloadConfig::new(limit))
                    .wrap(actix_web::middleware::Condition::new(cors_enabled, cors))
                    .route(web::post().to(post))
                    .route(web::get().guard(guard::Header("upgrade", "websocket")).to(subscribe))
                    .route(web::get().to(get)),
            )
            .route("/graphiql", web::get().to(graphiql));
    }
}
