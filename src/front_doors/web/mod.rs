//! The HTTP server actor: actix-web on a listener bound once at start-up.
//!
//! The socket is bound before the supervisor tree starts (so a taken port is a start-up error,
//! and port 0 resolves to a real port the tests can read), and each incarnation of this actor
//! serves a clone of it: a restart never loses the port.
//!
//! Routes: the dashboard (`/`, see [`dashboard`]), `GET /metrics` (Prometheus), `GET /healthz`
//! (the process is alive), `GET /readyz` (database reachable, migrations applied, scheduler
//! running), `GET /updates/feed` (the game's update posts as Atom, see [`feed`]), and the
//! GraphQL API (`/graphql`, `/graphiql`, see [`crate::front_doors::graphql::http`]). Every request is
//! counted by route pattern and status for `/metrics`, and every response carries the headers
//! of [`security::default_headers`] (no framing, no content sniffing, a Content-Security-Policy).
//! Takes no messages; when stopped it stops the server gracefully.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{error, info};

use crate::db::Database;

pub mod dashboard;
pub mod feed;
pub mod limiter;
pub mod security;
pub mod sessions;
use actix_web::dev::Service as _;
use hayloft_actors::events::EventBus;
use hayloft_actors::supervisor::{ChildContext, ChildState};

use crate::commands::CommandCore;
use crate::metrics::Metrics;

/// `[http]` in the configuration: the dashboard's sign-in, and the reverse proxy in front of
/// Hayloft if there is one. (Where it listens is the top-level `addr`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Trust the reverse proxy's `X-Forwarded-For` (its first entry is the client whose sign-in
    /// attempts are counted), `X-Forwarded-Proto` (`https` makes the cookie `Secure`) and
    /// `X-Forwarded-Host`. Set it only when such a proxy, overwriting those headers, is the one
    /// way in: otherwise any client can pick the address its attempts count against.
    pub behind_proxy: bool,
    /// A dashboard session ends this long after sign-in, however busy; also the cookie's Max-Age.
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// A session with no request for this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// Sessions live at once; one more sign-in ends the oldest.
    pub max_sessions: usize,
    /// Wrong tokens one address may send within `sign_in_window` before it is refused (429)
    /// until the window, counted from its first wrong token, has passed.
    pub sign_in_attempts: u32,
    /// The window wrong tokens are counted in, from an address's first wrong token.
    #[serde(with = "humantime_serde")]
    pub sign_in_window: Duration,
    /// How long every wrong token waits for its answer, which slows one-at-a-time guessing.
    #[serde(with = "humantime_serde")]
    pub sign_in_delay: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            behind_proxy: false,
            session_lifetime: Duration::from_secs(12 * 3600),
            session_idle: Duration::from_secs(3600),
            max_sessions: 1000,
            sign_in_attempts: 5,
            sign_in_window: Duration::from_secs(15 * 60),
            sign_in_delay: Duration::from_millis(500),
        }
    }
}

impl HttpSettings {
    /// Limits that would make signing in impossible are refused at start-up.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sessions == 0 {
            return Err("max_sessions must be at least 1".to_owned());
        }
        if self.sign_in_attempts == 0 {
            return Err("sign_in_attempts must be at least 1".to_owned());
        }
        if self.session_lifetime.is_zero() || self.session_idle.is_zero() {
            return Err("session_lifetime and session_idle must be longer than 0s".to_owned());
        }
        Ok(())
    }

    pub fn session_limits(&self) -> sessions::SessionLimits {
        sessions::SessionLimits {
            lifetime: self.session_lifetime,
            idle: self.session_idle,
            max_sessions: self.max_sessions,
        }
    }
}

/// State shared with request handlers.
#[derive(Clone)]
pub struct WebState {
    pub db: Database,
    pub version: &'static str,
    /// The GraphQL API, when served.
    pub graphql: Option<crate::front_doors::graphql::http::GraphqlState>,
    pub commands: CommandCore,
    pub events: EventBus,
    pub metrics: Arc<Metrics>,
    /// `HAYLOFT_ADMIN_TOKEN`: unlocks the dashboard's run buttons.
    pub admin_token: Option<Arc<str>>,
    pub http: Arc<HttpSettings>,
    /// Dashboard sessions. One store for every worker (and every restart of this actor), so a
    /// sign-in on one worker is known to the others.
    pub sessions: Arc<sessions::SessionStore>,
    pub sign_in: Arc<limiter::SignInLimiter>,
}

pub struct HttpServerActor {
    listener: Arc<TcpListener>,
    state: WebState,
    workers: usize,
    handle: Option<ServerHandle>,
    child: ChildContext,
}

impl HttpServerActor {
    pub fn new(listener: Arc<TcpListener>, state: WebState, workers: usize, child: ChildContext) -> Self {
        Self { listener, state, workers, handle: None, child }
    }
}

async fn healthz(state: web::Data<WebState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": state.version }))
}

/// Ready when the database answers, every migration is applied and the scheduler runs.
async fn readyz(state: web::Data<WebState>) -> HttpResponse {
    let database = match state.db.ping().await {
        Ok(()) => json!({ "ok": true, "backend": state.db.backend().to_string() }),
        Err(error) => json!({ "ok": false, "error": error.to_string() }),
    };
    let migrations = match state.db.missing_migrations().await {
        Ok(missing) if missing.is_empty() => json!({ "ok": true }),
        Ok(missing) => json!({ "ok": false, "missing": missing }),
        Err(error) => json!({ "ok": false, "error": error.to_string() }),
    };
    let scheduler = match state.commands.tree().await {
        Ok(tree) => match tree.children.iter().find(|child| child.name == "scheduler") {
            Some(node) if node.state == ChildState::Running => json!({ "ok": true }),
            Some(node) => json!({ "ok": false, "state": node.state.to_string() }),
            None => json!({ "ok": false, "error": "no scheduler in the tree" }),
        },
        Err(error) => json!({ "ok": false, "error": error.to_string() }),
    };
    let ready = [&database, &migrations, &scheduler].iter().all(|check| check["ok"] == true);
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "migrations": migrations,
        "scheduler": scheduler,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(state: web::Data<WebState>) -> HttpResponse {
    let mut text = state.metrics.render(state.commands.pipelines(), Some(&state.events));
    crate::metrics::render_process(&mut text);
    // The pipelines and the cluster as the database says they are now; a scrape still answers
    // (with what the process knows) when it cannot.
    match state.commands.status().await {
        Ok(report) => {
            crate::metrics::render_pipelines(&mut text, &report.pipelines);
            crate::metrics::render_nodes(&mut text, &report.nodes);
        }
        Err(error) => tracing::warn!(%error, "metrics: could not read the pipelines and nodes"),
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

pub fn routes(config: &mut web::ServiceConfig, state: &WebState) {
    if let Some(graphql) = &state.graphql {
        config.configure(crate::front_doors::graphql::http::routes(graphql.clone()));
    }
    config
        .route("/", web::get().to(dashboard::page))
        .route("/dashboard/{part}", web::get().to(dashboard::fragment))
        .route("/dashboard/run/{pipeline}", web::post().to(dashboard::run))
        .route("/events", web::get().to(dashboard::events))
        .route("/login", web::get().to(dashboard::login_form))
        .route("/login", web::post().to(dashboard::login))
        .route("/logout", web::post().to(dashboard::logout))
        .route("/metrics", web::get().to(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/updates/feed", web::get().to(feed::updates_feed));
}

impl Actor for HttpServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let listener = match self.listener.try_clone() {
            Ok(listener) => listener,
            Err(error) => {
                self.child.fail(format!("cannot reuse the listening socket: {error}"));
                ctx.stop();
                return;
            }
        };
        let state = self.state.clone();
        // Hashed once per start, not per worker or per request.
        let policy = security::content_security_policy(&dashboard::TEMPLATES);
        let server = HttpServer::new(move || {
            let metrics = state.metrics.clone();
            App::new()
                .wrap(security::default_headers(&policy))
                .wrap_fn(move |request, service| {
                    let metrics = metrics.clone();
                    let started = std::time::Instant::now();
                    let method = request.method().to_string();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        // The route pattern, never the raw path: label values stay few.
                        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                        let status = response.status().as_u16();
                        metrics.http_request(&route, &method, status, started.elapsed().as_secs_f64());
                        Ok(response)
                    }
                })
                .app_data(web::Data::new(state.clone()))
                .configure(|config| routes(config, &state))
        })
        .workers(self.workers)
        // Shutdown is ours to drive (see the serve command), not the server's own handler.
        .disable_signals()
        .listen(listener);
        let server = match server {
            Ok(server) => server.run(),
            Err(error) => {
                self.child.fail(format!("cannot listen: {error}"));
                ctx.stop();
                return;
            }
        };
        self.handle = Some(server.handle());
        info!(addr = self.listener.local_addr().ok().map(tracing::field::display), "http server started");
        let child = self.child.clone();
        ctx.spawn(
            async move {
                if let Err(error) = server.await {
                    error!(%error, "http server stopped with an error");
                    child.fail(format!("http server failed: {error}"));
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        );
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(handle) = self.handle.take() {
            // Finish in-flight requests; detached because the actor is going away.
            actix::spawn(async move { handle.stop(true).await });
        }
    }
}
