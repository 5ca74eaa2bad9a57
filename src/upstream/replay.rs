//! `hayloft replay <dir>`: serves a capture directory over HTTP exactly as the upstream would,
//! so pipelines can be run and tested offline against real captures. Requests are matched by
//! path and the query parameters each route lists (others, like cache busters, are ignored).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tracing::{debug, info};

use super::routes::{split_request, Routes, RoutesError};

struct ReplayState {
    dir: PathBuf,
    routes: Routes,
}

async fn answer(request: HttpRequest, state: web::Data<Arc<ReplayState>>) -> HttpResponse {
    let target = match request.uri().query() {
        Some(query) => format!("{}?{query}", request.path()),
        None => request.path().to_owned(),
    };
    let (path, query) = split_request(&target);
    let Some(route) = state.routes.resolve(&path, &query) else {
        debug!(request = %target, "no capture");
        return HttpResponse::NotFound().body(format!("no capture answers {target}\n"));
    };
    match tokio::fs::read(state.dir.join(&route.file)).await {
        Ok(body) => HttpResponse::Ok().content_type(route.content_type.as_str()).body(body),
        Err(error) => HttpResponse::InternalServerError().body(format!("cannot read {}: {error}\n", route.file)),
    }
}

/// Serves `dir` on `listener` until the process is stopped.
pub async fn serve(dir: PathBuf, listener: TcpListener) -> Result<(), ReplayError> {
    let routes = Routes::load(&dir)?;
    info!(dir = %dir.display(), routes = routes.routes().len(), "replaying captures");
    let state = Arc::new(ReplayState { dir, routes });
    HttpServer::new(move || App::new().app_data(web::Data::new(state.clone())).default_service(web::to(answer)))
        .workers(1)
        .listen(listener)?
        .run()
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Routes(#[from] RoutesError),
    #[error("replay server: {0}")]
    Io(#[from] std::io::Error),
}
