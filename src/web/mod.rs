//! The HTTP server actor: actix-web on a listener bound once at start-up.
//!
//! The socket is bound before the supervisor tree starts (so a taken port is a start-up error,
//! and port 0 resolves to a real port the tests can read), and each incarnation of this actor
//! serves a clone of it: a restart never loses the port.
//!
//! Routes: `GET /healthz` (the process is alive), `GET /readyz` (database reachable),
//! `GET /updates/feed` (the game's update posts as Atom, see [`feed`]), and the GraphQL API
//! (`/graphql`, `/graphiql`, see [`crate::graphql::http`]).
//! Takes no messages; when stopped it stops the server gracefully.

use std::net::TcpListener;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use tracing::{error, info};

use crate::db::Database;

pub mod feed;
use hayloft_actors::supervisor::ChildContext;

/// State shared with request handlers.
#[derive(Clone)]
pub struct WebState {
    pub db: Database,
    pub version: &'static str,
    /// The GraphQL API, when served.
    pub graphql: Option<crate::graphql::http::GraphqlState>,
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

async fn readyz(state: web::Data<WebState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "database": state.db.backend().to_string() })),
        Err(error) => {
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "error": error.to_string() }))
        }
    }
}

pub fn routes(config: &mut web::ServiceConfig, state: &WebState) {
    if let Some(graphql) = &state.graphql {
        config.configure(crate::graphql::http::routes(graphql.clone()));
    }
    config
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
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(state.clone())).configure(|config| routes(config, &state))
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
        info!(addr = ?self.listener.local_addr().ok(), "http server started");
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
