//! Serving the schema over HTTP: `POST /graphql` and `GET /graphql?query=…` (queries only, with
//! `Cache-Control` and an `ETag` so a static site generator or CDN can cache them), WebSocket
//! subscriptions on `/graphql` (graphql-transport-ws and the older graphql-ws), and GraphiQL at
//! `/graphiql`. Every request gets a body size limit and a timeout, and every error a stable
//! `extensions.code`.
//!
//! Costs are bounded before they are paid: a document is parsed and measured (fragments
//! expanded, in linear time; see [`super::budget`]) before validation, then waits for a place in
//! one of two lanes — small documents and large ones — each with a few places and a short
//! queue, so a flood of heavy queries is refused with UNAVAILABLE while small queries and
//! `/healthz` keep answering. A batch holds at most `max_batch` requests.

use std::sync::atomic::{AtomicUsize, Ordering};
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
    pub admission: Arc<Admission>,
}

/// Why a request was not given a place to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoPlace {
    #[error("the server is answering as many {0} queries as it can and {1} more are waiting; try again shortly")]
    QueueFull(&'static str, usize),
    #[error("no place to run this {0} query came free within {1:?}; try again shortly")]
    Waited(&'static str, std::time::Duration),
}

/// A few places to execute requests in, and a short queue for more: FIFO (tokio's semaphore
/// is fair), bounded in length and in waiting time.
pub struct Lane {
    name: &'static str,
    places: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: std::time::Duration,
}

/// Counts a waiting request for as long as it waits, even if its client goes away.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Lane {
    fn new(name: &'static str, places: usize, max_waiting: usize, max_wait: std::time::Duration) -> Self {
        let places = Arc::new(tokio::sync::Semaphore::new(places.max(1)));
        Self { name, places, waiting: AtomicUsize::new(0), max_waiting, max_wait }
    }

    /// A place, held until the permit is dropped (by the task that executes the request).
    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, NoPlace> {
        if let Ok(permit) = self.places.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let already = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if already >= self.max_waiting {
            return Err(NoPlace::QueueFull(self.name, already));
        }
        match tokio::time::timeout(self.max_wait, self.places.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a wait that ran out.
            Ok(Err(_)) | Err(_) => Err(NoPlace::Waited(self.name, self.max_wait)),
        }
    }
}

/// The two lanes of [`GraphqlSettings`]: small documents and large ones.
pub struct Admission {
    small: Lane,
    large: Lane,
    small_fields: u64,
    small_depth: u64,
}

impl Admission {
    pub fn new(settings: &GraphqlSettings) -> Self {
        let lane = |name| Lane::new(name, settings.max_concurrent, settings.max_queued, settings.queue_timeout);
        Self {
            small: lane("small"),
            large: lane("large"),
            small_fields: settings.small_fields as u64,
            small_depth: settings.small_depth as u64,
        }
    }

    fn lane(&self, cost: super::budget::Cost) -> &Lane {
        if cost.fields <= self.small_fields && cost.depth <= self.small_depth {
            &self.small
        } else {
            &self.large
        }
    }
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

/// Measures, admits and runs one request within the time limit.
async fn execute(state: &GraphqlState, mut request: Request, count_statements: bool) -> Response {
    let before = crate::db::statements::started();
    let started = std::time::Instant::now();
    // Parsed and measured here, before any place is taken: a document over its budget costs
    // one linear pass. The schema reuses the parsed document (and measures it once more in its
    // parse hook, which also covers WebSocket subscriptions).
    let cost = match request.parsed_query() {
        Ok(document) => super::budget::measure(document, state.settings.budget()),
        Err(error) => return with_codes(Response::from_errors(vec![error])),
    };
    let cost = match cost {
        Ok(cost) => cost,
        Err(refusal) => {
            state.metrics.add(crate::metrics::GRAPHQL_REFUSED, vec![("reason", "over_budget".to_owned())], 1.0);
            return Response::from_errors(vec![super::over_budget(refusal)]);
        }
    };
    let permit = match state.admission.lane(cost).enter().await {
        Ok(permit) => permit,
        Err(refusal) => {
            state.metrics.add(crate::metrics::GRAPHQL_REFUSED, vec![("reason", "busy".to_owned())], 1.0);
            return error_response(code::UNAVAILABLE, refusal.to_string());
        }
    };
    // The request runs as its own task, holding its place until it ends. On SQLite it is never
    // cancelled mid-query: dropping a SQLite query in flight panics the worker (diesel-async's
    // sync wrapper blocks in place on drop, which actix's single-threaded runtime forbids).
    // Past the time limit the client gets TIMEOUT at once; on PostgreSQL the task is aborted
    // (tokio-postgres drops an abandoned query's answer), on SQLite it finishes on its own but
    // still holds its place, so abandoned work can never pile up. Boxed: a schema this size
    // makes large resolver futures.
    let schema = state.schema.get().clone();
    let mut task = actix_web::rt::spawn(Box::pin(async move {
        let _place = permit;
        schema.execute(request).await
    }));
    let mut response = match tokio::time::timeout(state.settings.timeout, &mut task).await {
        Ok(Ok(response)) => with_codes(response),
        Ok(Err(error)) => {
            tracing::error!(%error, "a GraphQL request failed");
            error_response(code::INTERNAL, "the request failed inside the server; see the server log".to_owned())
        }
        Err(_) => {
            let cancelled = matches!(state.db, Database::Postgres(_));
            if cancelled {
                task.abort();
            }
            let what = if cancelled { "it was cancelled" } else { "its answer was abandoned" };
            error_response(code::TIMEOUT, format!("the request took longer than {:?}; {what}", state.settings.timeout))
        }
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

/// Whether a response says the server had no place for it (HTTP 503, worth retrying).
fn refused_as_busy(response: &Response) -> bool {
    response.errors.iter().any(|error| {
        error.extensions.as_ref().and_then(|extensions| extensions.get("code"))
            == Some(&async_graphql::Value::from(code::UNAVAILABLE))
    })
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

async fn post(
    state: web::Data<GraphqlState>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let body = match body {
        Ok(body) => body,
        Err(error) if error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = state.settings.max_body_bytes;
            let refusal = error_response(code::TOO_LARGE, format!("the request body is over the {limit}-byte limit"));
            return json(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE, &refusal);
        }
        Err(error) => return bad_request(format!("the request body could not be read: {error}")),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => return bad_request(format!("the body is not a GraphQL request: {error}")),
    };
    let admin = is_admin(&state, &request);
    let count = wants_statements(&request);
    let response = match batch {
        BatchRequest::Single(single) => {
            let response = execute(&state, prepare(&state, single, admin), count).await;
            if refused_as_busy(&response) {
                let mut busy = json(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, &response);
                busy.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                return busy;
            }
            BatchResponse::Single(response)
        }
        BatchRequest::Batch(requests) if requests.len() > state.settings.max_batch => {
            return bad_request(format!(
                "a batch may hold at most {} requests; this one holds {}",
                state.settings.max_batch,
                requests.len()
            ));
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

/// GraphiQL's own Content-Security-Policy: every script, style and font is Hayloft's own
/// (`graphiql/`, vendored at pinned versions), so the page runs with no network and loads
/// nothing from anywhere else. No inline code at all (React and the editor set styles through
/// the DOM, which the policy allows); the editor's fonts and icons are data: URLs inside the
/// stylesheet.
const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; \
    frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'none'";

/// The GraphiQL page and its assets, compiled into the binary.
const GRAPHIQL_FILES: [(&str, &str, &[u8]); 8] = [
    ("index.html", "text/html; charset=utf-8", include_bytes!("graphiql/index.html")),
    ("page.css", "text/css; charset=utf-8", include_bytes!("graphiql/page.css")),
    ("start.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/start.js")),
    ("graphiql.min.css", "text/css; charset=utf-8", include_bytes!("graphiql/graphiql.min.css")),
    ("graphiql.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/graphiql.min.js")),
    ("react.production.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/react.production.min.js")),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("graphiql/react-dom.production.min.js"),
    ),
    ("graphql-ws.min.js", "text/javascript; charset=utf-8", include_bytes!("graphiql/graphql-ws.min.js")),
];

/// The vendored files change only with the binary: a day of caching costs nothing.
const GRAPHIQL_CACHE: &str = "public, max-age=86400";

fn graphiql_file(name: &str) -> HttpResponse {
    match GRAPHIQL_FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CONTENT_SECURITY_POLICY, GRAPHIQL_CSP))
            .insert_header((header::CACHE_CONTROL, GRAPHIQL_CACHE))
            .body(*body),
        None => HttpResponse::NotFound().content_type("text/plain; charset=utf-8").body("no such GraphiQL file\n"),
    }
}

async fn graphiql() -> HttpResponse {
    graphiql_file("index.html")
}

async fn graphiql_asset(name: web::Path<String>) -> HttpResponse {
    // The page is not an asset: only what it loads is served under /graphiql/assets/.
    if name.as_str() == "index.html" {
        return graphiql_file("");
    }
    graphiql_file(name.as_str())
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
            .route("/graphiql", web::get().to(graphiql))
            .route("/graphiql/assets/{name}", web::get().to(graphiql_asset));
    }
}
