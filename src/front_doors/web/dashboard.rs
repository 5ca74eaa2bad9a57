//! The status dashboard at `/`: every pipeline (schedule in words, last run, last change, next
//! run; failing ones first), a chart of the latest runs, row counts per table, recent changes,
//! the supervisor tree folded to what needs attention, the nodes and a live log tail, rendered
//! on the server from the command core. The chart is SVG drawn here: no script builds it.
//!
//! The page is plain HTML with a little inline script, compiled into the binary (no build step).
//! It stays live over server-sent events (`/events`): a log line is appended as it comes; a
//! run, a change or an actor restart makes the page fetch the server-rendered fragment that
//! changed (`/dashboard/{pipelines,tree,changes}`).
//!
//! Run buttons appear only once the admin token has been entered at `/login`. Signing in starts
//! a server-side session (see [`super::sessions`]): the cookie holds a random id, never the token
//! or anything derived from it, so each sign-in gets a new cookie and signing out (or the
//! session's lifetime or idle limit running out) makes the old one worthless. The cookie is
//! HttpOnly, SameSite=Strict, `Secure` when the browser came over TLS, with Max-Age the session
//! lifetime. Wrong tokens are counted per client address ([`super::limiter`]): each waits
//! `sign_in_delay` for its 401, and past `sign_in_attempts` in `sign_in_window` the address gets
//! 429 with `Retry-After`. The three POSTs (`/login`, `/logout`, `/dashboard/run/{pipeline}`)
//! refuse cross-site requests ([`super::security::SameOrigin`]). Scripts may instead send
//! `Authorization: Bearer <token>` to the run route.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use hayloft_actors::command::{
    log_line_text, Caller, Command, CommandError, LogLevel, NodeInfo, PipelineStatus, Reply,
};
use hayloft_actors::events::{BusItem, Event};
use hayloft_actors::ledger::RunRecord;
use hayloft_actors::supervisor::TreeNode;
use serde::Deserialize;
use serde_json::json;

use super::limiter::Attempt;
use super::security::{self, SameOrigin};
use super::WebState;
use crate::db::queries;

const COOKIE: &str = "hayloft_session";
/// How many log lines and changes the page starts with.
const LOG_TAIL: usize = 100;
const CHANGES_SHOWN: i64 = 25;
/// A comment line on the event stream this often keeps proxies from closing it.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Compares without an early exit, so timing does not reveal how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

/// Whether the request is the admin's: a live dashboard session, or `Authorization: Bearer`.
pub fn is_admin(state: &WebState, request: &HttpRequest) -> bool {
    let Some(token) = state.admin_token.as_deref() else { return false };
    if request.cookie(COOKIE).is_some_and(|cookie| state.sessions.check(cookie.value())) {
        return true;
    }
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()))
}

fn html(body: String) -> HttpResponse {
    html_with(actix_web::http::StatusCode::OK, body)
}

fn html_with(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn time(at: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    match at {
        Some(at) => {
            let iso = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!("<time datetime=\"{iso}\">{iso}</time>")
        }
        None => "–".to_owned(),
    }
}

fn status_badge(status: &str) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", escape(status))
}

fn run_summary(run: &RunRecord) -> String {
    let counts = run.counts;
    let mut text = format!(
        "{} <span class=\"counts\">+{} ~{} −{}</span>",
        status_badge(run.status.as_str()),
        counts.inserted,
        counts.updated,
        counts.deleted
    );
    if let Some(ms) = run.duration_ms() {
        let _ = write!(text, " <span class=\"muted\">{ms} ms</span>");
    }
    text
}

/// Whether a pipeline needs someone's attention: its last run failed or was abandoned, or one
/// of its actors is quarantined.
fn needs_attention(pipeline: &PipelineStatus, quarantined: &[String]) -> bool {
    let failed = pipeline.last_run.as_ref().is_some_and(|run| {
        matches!(run.status, hayloft_actors::ledger::RunStatus::Failed | hayloft_actors::ledger::RunStatus::Abandoned)
    });
    failed || quarantined.iter().any(|name| name == &pipeline.name)
}

/// The last run that changed rows: counts and when.
fn last_change(pipeline: &PipelineStatus) -> String {
    match &pipeline.last_change {
        Some(run) => {
            let counts = run.counts;
            format!(
                "<span class=\"counts\">+{} ~{} −{}</span> {}",
                counts.inserted,
                counts.updated,
                counts.deleted,
                time(run.finished_at.as_ref().or(run.started_at.as_ref()))
            )
        }
        None => "<span class=\"muted\">never</span>".to_owned(),
    }
}

/// The pipelines table: those that need attention first, then the rest in registry order.
fn pipelines_fragment(pipelines: &[PipelineStatus], admin: bool, quarantined: &[String]) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>pipeline</th><th class=\"wide\">schedule</th><th>last run</th><th>last change</th><th>next run</th>",
    );
    if admin {
        out.push_str("<th></th>");
    }
    out.push_str("</tr></thead><tbody>");
    let (troubled, fine): (Vec<&PipelineStatus>, Vec<&PipelineStatus>) =
        pipelines.iter().partition(|pipeline| needs_attention(pipeline, quarantined));
    for pipeline in troubled.iter().chain(fine.iter()).copied() {
        let name = escape(&pipeline.name);
        let last = match (&pipeline.running, &pipeline.last_run) {
            (Some(run_id), _) => format!("{} <span class=\"muted\">#{run_id}</span>", status_badge("running")),
            (None, Some(run)) => run_summary(run),
            (None, None) => status_badge("never"),
        };
        let error = pipeline
            .last_run
            .as_ref()
            .and_then(|run| run.error.as_deref())
            .map(|error| format!("<div class=\"error\">{}</div>", escape(error)))
            .unwrap_or_default();
        let next = if pipeline.enabled { time(pipeline.next_run.as_ref()) } else { "disabled".to_owned() };
        let attention = if needs_attention(pipeline, quarantined) { " class=\"attention\"" } else { "" };
        let quarantine = if quarantined.iter().any(|name| name == &pipeline.name) {
            format!(" {}", status_badge("quarantined"))
        } else {
            String::new()
        };
        let started = time(pipeline.last_run.as_ref().and_then(|run| run.started_at.as_ref()));
        let _ = write!(
            out,
            "<tr data-pipeline=\"{name}\"{attention}><td class=\"name\">{name}{quarantine}</td><td class=\"wide schedule\" title=\"{}\">{}</td><td class=\"last-status\" data-label=\"last run\">{last} <span class=\"muted\">{started}</span>{error}</td><td class=\"last-change\" data-label=\"last change\">{}</td><td data-label=\"next run\">{next}</td>",
            escape(&pipeline.schedule),
            escape(&pipeline.schedule_words),
            last_change(pipeline),
        );
        if admin {
            let disabled = if pipeline.running.is_some() { " disabled" } else { "" };
            let _ = write!(
                out,
                "<td class=\"action\"><button class=\"run\" data-run=\"{name}\"{disabled}>Run</button></td>"
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// One actor's line: `name`, its state, restarts, quarantine and last exit.
fn actor_line(node: &TreeNode, name: &str, out: &mut String) {
    let _ = write!(out, "<li><span class=\"actor\">{}</span> {}", escape(name), status_badge(&node.state.to_string()));
    if node.restarts > 0 {
        let _ = write!(out, " <span class=\"restarts\">restarts: {}</span>", node.restarts);
    }
    if let Some(ms) = node.quarantined_for_ms {
        let _ = write!(out, " <span class=\"error\">retry in {} s</span>", ms / 1000);
    }
    if let Some(exit) = &node.last_exit {
        let _ = write!(out, " <span class=\"muted\">last exit: {}</span>", escape(&exit.to_string()));
    }
}

fn tree_node(node: &TreeNode, out: &mut String) {
    actor_line(node, &node.name, out);
    if !node.children.is_empty() {
        out.push_str("<ul>");
        for child in &node.children {
            tree_node(child, out);
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>");
}

/// Every actor of the tree, depth first.
fn actors(node: &TreeNode) -> Vec<&TreeNode> {
    let mut all = vec![node];
    for child in &node.children {
        all.extend(actors(child));
    }
    all
}

fn unhealthy(node: &TreeNode) -> bool {
    node.state != hayloft_actors::supervisor::ChildState::Running
        || node.restarts > 0
        || node.quarantined_for_ms.is_some()
}

/// The pipelines with a quarantined actor (`root/pipelines/<name>/…`).
fn quarantined_pipelines(tree: &TreeNode) -> Vec<String> {
    actors(tree)
        .into_iter()
        .filter(|node| {
            node.quarantined_for_ms.is_some() || node.state == hayloft_actors::supervisor::ChildState::Quarantined
        })
        .filter_map(|node| {
            node.path.strip_prefix("root/pipelines/").map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
        })
        .collect()
}

/// The tree folded to what needs attention: a count of the healthy actors, each one that is
/// not (stopped, restarting, quarantined, or restarted since it started) by its path, and the
/// whole tree behind a disclosure.
fn tree_fragment(tree: Result<TreeNode, CommandError>) -> String {
    match tree {
        Ok(root) => {
            let all = actors(&root);
            let troubled: Vec<&&TreeNode> = all.iter().filter(|node| unhealthy(node)).collect();
            let mut out = String::new();
            if troubled.is_empty() {
                let _ =
                    write!(out, "<p class=\"healthy\">{} All {} actors running.</p>", status_badge("ok"), all.len());
            } else {
                let _ = write!(
                    out,
                    "<p>{} of {} actors need attention; the others are running.</p><ul class=\"troubled\">",
                    troubled.len(),
                    all.len()
                );
                for node in troubled {
                    actor_line(node, &node.path, &mut out);
                    out.push_str("</li>");
                }
                out.push_str("</ul>");
            }
            out.push_str("<details><summary>the whole tree</summary><ul class=\"tree\">");
            tree_node(&root, &mut out);
            out.push_str("</ul></details>");
            out
        }
        Err(error) => format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
    }
}

/// How many runs the chart shows.
const CHART_RUNS: i64 = 40;

/// The latest runs as a server-drawn SVG, oldest on the left: how long each took (top), how
/// many rows it changed (middle) and how it ended (the strip below, one mark per run). Each
/// mark's tooltip names the run. Colours come from the page's stylesheet (classes), so the
/// policy that forbids inline styles holds.
fn activity_fragment(runs: &[RunRecord]) -> String {
    let finished: Vec<&RunRecord> = runs.iter().filter(|run| run.finished_at.is_some()).rev().collect();
    if finished.is_empty() {
        return "<p class=\"muted\">No finished runs yet.</p>".to_owned();
    }
    const SLOT: f64 = 12.0;
    const BAR: f64 = 8.0;
    const DURATION_TOP: f64 = 4.0;
    const DURATION_HEIGHT: f64 = 56.0;
    const ROWS_TOP: f64 = 68.0;
    const ROWS_HEIGHT: f64 = 36.0;
    const STRIP_TOP: f64 = 110.0;
    let width = SLOT * CHART_RUNS as f64;
    let longest = finished.iter().filter_map(|run| run.duration_ms()).max().unwrap_or(1).max(1) as f64;
    let changed = |run: &RunRecord| run.counts.inserted + run.counts.updated + run.counts.deleted;
    let most = finished.iter().map(|run| changed(run)).max().unwrap_or(1).max(1) as f64;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} 124\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"the latest {} runs\">",
        finished.len()
    );
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"0\" x2=\"{width}\" y1=\"{}\" y2=\"{}\"/>",
        DURATION_TOP + DURATION_HEIGHT,
        DURATION_TOP + DURATION_HEIGHT
    );
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"0\" x2=\"{width}\" y1=\"{}\" y2=\"{}\"/>",
        ROWS_TOP + ROWS_HEIGHT,
        ROWS_TOP + ROWS_HEIGHT
    );
    for (index, run) in finished.iter().enumerate() {
        let x = index as f64 * SLOT + (SLOT - BAR) / 2.0;
        let status = run.status.as_str();
        let duration = run.duration_ms().unwrap_or(0);
        let counts = run.counts;
        let title = escape(&format!(
            "{} #{}: {status} in {duration} ms, +{} ~{} −{}",
            run.pipeline, run.id, counts.inserted, counts.updated, counts.deleted
        ));
        // At least a sliver, so a 2 ms run is still there to hover.
        let height = (duration as f64 / longest * DURATION_HEIGHT).max(1.5);
        let rows = changed(run) as f64 / most * ROWS_HEIGHT;
        let _ = write!(
            out,
            "<g class=\"run {status}\" data-run=\"{}\"><title>{title}</title><rect class=\"duration\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{BAR}\" height=\"{height:.1}\"/>",
            run.id,
            DURATION_TOP + DURATION_HEIGHT - height
        );
        if rows > 0.0 {
            let _ = write!(
                out,
                "<rect class=\"rows\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{BAR}\" height=\"{:.1}\"/>",
                ROWS_TOP + ROWS_HEIGHT - rows.max(1.5),
                rows.max(1.5)
            );
        }
        let _ = write!(
            out,
            "<rect class=\"mark\" x=\"{x:.1}\" y=\"{STRIP_TOP}\" width=\"{BAR}\" height=\"{BAR}\" rx=\"2\"/></g>"
        );
    }
    out.push_str("</svg>");
    let failed = finished.iter().filter(|run| run.status != hayloft_actors::ledger::RunStatus::Succeeded).count();
    let _ = write!(
        out,
        "<p class=\"legend muted\">The latest {} runs, oldest first: duration (longest {} ms), rows changed (most {}), and how each ended: {} succeeded, {failed} did not.</p>",
        finished.len(),
        longest as u64,
        most as u64,
        finished.len() - failed
    );
    out
}

async fn activity_html(state: &WebState) -> String {
    match queries::recent_runs(&state.db, None, CHART_RUNS).await {
        Ok(runs) => activity_fragment(&runs),
        Err(error) => format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
    }
}

/// Rows per table, as `count` knows them.
async fn tables_html(state: &WebState) -> String {
    let entities = crate::pipelines::registry::entities()
        .map(|entity| (entity.name, entity.table))
        .chain(queries::LEDGER_ENTITIES.iter().map(|(name, table, _)| (*name, *table)));
    let mut out = String::from("<dl class=\"tables\">");
    for (name, table) in entities {
        let count = match queries::count_rows(&state.db, table).await {
            Ok(count) => count.to_string(),
            Err(error) => return format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
        };
        let _ = write!(out, "<div data-entity=\"{name}\"><dt>{name}</dt><dd>{count}</dd></div>", name = escape(name));
    }
    out.push_str("</dl>");
    out
}

async fn changes_fragment(state: &WebState) -> String {
    let rows = match queries::changes(&state.db, None, None, None, CHANGES_SHOWN).await {
        Ok(rows) => rows,
        Err(error) => return format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
    };
    if rows.is_empty() {
        return "<p class=\"muted\">No changes yet.</p>".to_owned();
    }
    let mut out = String::from("<table><thead><tr><th>run</th><th>op</th><th>entity</th><th>key</th><th>name</th><th>fields</th><th>when</th></tr></thead><tbody>");
    for row in rows {
        let _ = write!(
            out,
            "<tr><td>#{}</td><td><span class=\"op {op}\">{op}</span></td><td>{}</td><td>{}</td><td>{}</td><td class=\"muted\">{}</td><td>{}</td></tr>",
            row.run_id,
            escape(&row.entity),
            escape(&row.entity_key),
            escape(row.label.as_deref().unwrap_or("")),
            escape(&row.fields.replace(',', ", ")),
            time(Some(&row.recorded_at.and_utc())),
            op = escape(&row.op),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The nodes sharing the database: state, last heartbeat, what each runs.
fn nodes_fragment(nodes: &[NodeInfo]) -> String {
    if nodes.is_empty() {
        return "<p class=\"muted\">No node has started yet.</p>".to_owned();
    }
    let mut out = String::from(
        "<table><thead><tr><th>node</th><th>state</th><th>heartbeat</th><th>running</th><th class=\"wide\">host</th><th class=\"wide\">version</th></tr></thead><tbody>",
    );
    for node in nodes {
        let running = if node.running.is_empty() {
            "<span class=\"muted\">idle</span>".to_owned()
        } else {
            escape(&node.running.join(", "))
        };
        let _ = write!(
            out,
            "<tr data-node=\"{name}\"><td class=\"name\">{name}</td><td>{}</td><td>{:.1} s ago</td><td>{running}</td><td class=\"wide\">{} <span class=\"muted\">pid {}</span></td><td class=\"wide\">{}</td></tr>",
            status_badge(node.state),
            node.heartbeat_age_ms as f64 / 1000.0,
            escape(&node.host),
            node.pid,
            escape(&node.version),
            name = escape(&node.node),
        );
    }
    out.push_str("</tbody></table>");
    out
}

async fn nodes_html(state: &WebState) -> String {
    match state.commands.execute(&Caller::new("dashboard", "viewer", false), Command::Nodes).await {
        Ok(Reply::Nodes { nodes }) => nodes_fragment(&nodes),
        Ok(other) => format!("<p class=\"error\">unexpected answer: {}</p>", escape(&other.to_text())),
        Err(error) => format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
    }
}

async fn pipelines_html(state: &WebState, admin: bool) -> String {
    let quarantined = state.commands.tree().await.map(|tree| quarantined_pipelines(&tree)).unwrap_or_default();
    match state.commands.status().await {
        Ok(report) => pipelines_fragment(&report.pipelines, admin, &quarantined),
        Err(error) => format!("<p class=\"error\">{}</p>", escape(&error.to_string())),
    }
}

/// `GET /`: the whole page.
pub async fn page(state: web::Data<WebState>, request: HttpRequest) -> HttpResponse {
    let admin = is_admin(&state, &request);
    let pipelines = pipelines_html(&state, admin).await;
    let tree = tree_fragment(state.commands.tree().await);
    let changes = changes_fragment(&state).await;
    let nodes = nodes_html(&state).await;
    let activity = activity_html(&state).await;
    let tables = tables_html(&state).await;
    let logs: String = crate::telemetry::recent_logs(LOG_TAIL, LogLevel::Info)
        .lines
        .iter()
        .map(|line| {
            format!("<div class=\"line {}\">{}</div>", escape(&line.level.to_lowercase()), escape(&log_line_text(line)))
        })
        .collect();
    let session = match (&state.admin_token, admin) {
        (None, _) => "<span class=\"muted\">read-only (no admin token configured)</span>".to_owned(),
        (Some(_), true) => "<form method=\"post\" action=\"/logout\"><button>Sign out</button></form>".to_owned(),
        (Some(_), false) => "<a class=\"button\" href=\"/login\">Admin sign-in</a>".to_owned(),
    };
    let body = PAGE
        .replace("{{version}}", state.version)
        .replace("{{database}}", &escape(&state.db.backend().to_string()))
        .replace("{{session}}", &session)
        .replace("{{pipelines}}", &pipelines)
        .replace("{{tree}}", &tree)
        .replace("{{changes}}", &changes)
        .replace("{{nodes}}", &nodes)
        .replace("{{activity}}", &activity)
        .replace("{{tables}}", &tables)
        .replace("{{logs}}", &logs);
    html(body)
}

/// `GET /dashboard/{part}`: one fragment, for live refreshes.
pub async fn fragment(state: web::Data<WebState>, request: HttpRequest, part: web::Path<String>) -> HttpResponse {
    match part.as_str() {
        "pipelines" => html(pipelines_html(&state, is_admin(&state, &request)).await),
        "tree" => html(tree_fragment(state.commands.tree().await)),
        "changes" => html(changes_fragment(&state).await),
        "nodes" => html(nodes_html(&state).await),
        "activity" => html(activity_html(&state).await),
        "tables" => html(tables_html(&state).await),
        other => HttpResponse::NotFound().body(format!("no dashboard part {other:?}")),
    }
}

/// `POST /dashboard/run/{pipeline}`: starts a run (admin only), answers with a line of text.
pub async fn run(
    _same_origin: SameOrigin,
    state: web::Data<WebState>,
    request: HttpRequest,
    pipeline: web::Path<String>,
) -> HttpResponse {
    if !is_admin(&state, &request) {
        return HttpResponse::Forbidden().body("starting runs needs the admin token: sign in at /login");
    }
    let caller = Caller::new("dashboard", "admin token", true);
    let command = Command::Run { pipeline: pipeline.into_inner(), wait: false, allow_mass_delete: false };
    match state.commands.execute(&caller, command).await {
        Ok(reply @ Reply::RunStarted { .. }) => HttpResponse::Accepted().body(reply.to_text()),
        Ok(other) => HttpResponse::Ok().body(other.to_text()),
        Err(error) => {
            // Every kind named, no catch-all: a new kind of error must choose its status here.
            let status = match error {
                CommandError::NotFound(_) | CommandError::UnknownPipeline { .. } | CommandError::NoSuchRun(_) => {
                    actix_web::http::StatusCode::NOT_FOUND
                }
                CommandError::Forbidden { .. } => actix_web::http::StatusCode::FORBIDDEN,
                CommandError::Unavailable(_) | CommandError::Database(_) => {
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE
                }
                CommandError::Empty
                | CommandError::Unknown { .. }
                | CommandError::Usage { .. }
                | CommandError::Failed(_) => actix_web::http::StatusCode::CONFLICT,
            };
            HttpResponse::build(status).body(error.to_string())
        }
    }
}

/// `GET /login`: the token form.
pub async fn login_form(state: web::Data<WebState>) -> HttpResponse {
    let note = if state.admin_token.is_none() {
        "<p class=\"error\">No admin token is configured (set HAYLOFT_ADMIN_TOKEN), so nobody can sign in.</p>"
    } else {
        ""
    };
    html(LOGIN.replace("{{note}}", note))
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// The session cookie: `value` for `max_age`, or a removal when `value` is empty.
fn session_cookie(request: &HttpRequest, state: &WebState, value: String) -> Cookie<'static> {
    let remove = value.is_empty();
    let mut cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(security::came_over_tls(request, state.http.behind_proxy))
        .max_age(cookie_max_age(state.http.session_lifetime))
        .finish();
    if remove {
        cookie.make_removal();
    }
    cookie
}

fn cookie_max_age(lifetime: Duration) -> actix_web::cookie::time::Duration {
    actix_web::cookie::time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX))
}

fn login_page(status: actix_web::http::StatusCode, message: &str) -> HttpResponse {
    html_with(status, LOGIN.replace("{{note}}", &format!("<p class=\"error\">{}</p>", escape(message))))
}

/// `POST /login`: checks the token (unless this address is locked out) and starts a session.
pub async fn login(
    _same_origin: SameOrigin,
    state: web::Data<WebState>,
    request: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    use actix_web::http::StatusCode;

    let Some(token) = state.admin_token.as_deref() else {
        return HttpResponse::Forbidden().body("no admin token is configured");
    };
    let client = security::client_address(&request, state.http.behind_proxy);
    let given = form.token.trim();
    match state.sign_in.attempt(client, || same(given.as_bytes(), token.as_bytes())) {
        Attempt::Refused { retry_after } => {
            // Whole seconds, rounded up: a client that waits exactly this long is let in.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            tracing::warn!(%client, retry_after_s = seconds, "dashboard sign-in refused, too many wrong tokens");
            let message = format!(
                "Too many wrong tokens from your address. Sign-in is locked for {seconds} more seconds; try again then."
            );
            let mut response = login_page(StatusCode::TOO_MANY_REQUESTS, &message);
            if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Attempt::Wrong { remaining } => {
            tracing::warn!(%client, remaining, "dashboard sign-in refused, wrong token");
            // A sleep on the runtime, not the thread: the worker serves others meanwhile. It
            // does not limit parallel guessing (the per-address count does); it keeps a single
            // client from learning anything quickly, the answer's timing included.
            tokio::time::sleep(state.http.sign_in_delay).await;
            login_page(StatusCode::UNAUTHORIZED, "That is not the admin token.")
        }
        Attempt::Accepted => match state.sessions.create() {
            Ok(session) => {
                tracing::info!(%client, "dashboard sign-in");
                HttpResponse::SeeOther()
                    .cookie(session_cookie(&request, &state, session))
                    .insert_header((header::LOCATION, "/"))
                    .finish()
            }
            Err(error) => {
                tracing::error!(%error, "dashboard sign-in failed");
                login_page(StatusCode::INTERNAL_SERVER_ERROR, "The server could not start a session; try again.")
            }
        },
    }
}

/// `POST /logout`: ends the session on the server, then forgets the cookie.
pub async fn logout(_same_origin: SameOrigin, state: web::Data<WebState>, request: HttpRequest) -> HttpResponse {
    if let Some(cookie) = request.cookie(COOKIE) {
        state.sessions.end(cookie.value());
    }
    HttpResponse::SeeOther()
        .cookie(session_cookie(&request, &state, String::new()))
        .insert_header((header::LOCATION, "/"))
        .finish()
}

/// One server-sent event.
fn sse(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// What the page hears about one bus event. Change lists are summarised: the page re-fetches.
fn event_frame(item: BusItem) -> Option<Bytes> {
    let event = match item {
        BusItem::Missed(count) => return Some(sse("missed", &json!({ "count": count }))),
        BusItem::Event(event) => event,
    };
    Some(match &*event {
        Event::RunStarted { run_id, pipeline, .. } => {
            sse("run_started", &json!({ "run_id": run_id, "pipeline": pipeline }))
        }
        Event::RunFinished { run_id, pipeline, status, .. } => {
            sse("run_finished", &json!({ "run_id": run_id, "pipeline": pipeline, "status": status }))
        }
        Event::Changes { run_id, pipeline, changes } => {
            sse("changes", &json!({ "run_id": run_id, "pipeline": pipeline, "count": changes.len() }))
        }
        Event::ActorRestarted { actor, .. } | Event::ActorQuarantined { actor, .. } => {
            sse("actor", &json!({ "actor": actor }))
        }
        Event::Log(line) => sse("log", &json!({ "level": line.level.to_lowercase(), "text": log_line_text(line) })),
    })
}

/// `GET /events`: the live stream the page listens to.
pub async fn events(state: web::Data<WebState>) -> HttpResponse {
    let updates = state.events.stream().filter_map(|item| futures::future::ready(event_frame(item)));
    let heartbeat = futures::stream::unfold((), |()| async {
        tokio::time::sleep(HEARTBEAT).await;
        Some((Bytes::from_static(b": still here\n\n"), ()))
    });
    let hello = futures::stream::once(async { Bytes::from_static(b"retry: 2000\n\n") });
    let stream: std::pin::Pin<Box<dyn Stream<Item = Bytes>>> =
        Box::pin(hello.chain(futures::stream::select(updates, heartbeat)));
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tell buffering proxies (nginx) to pass events through at once.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream.map(Ok::<_, actix_web::Error>))
}

const PAGE: &str = include_str!("dashboard.html");
const LOGIN: &str = include_str!("login.html");
/// Every template served as a page: their inline scripts and styles are allowed by hash in the
/// Content-Security-Policy (see [`security::content_security_policy`]).
pub const TEMPLATES: [&str; 2] = [PAGE, LOGIN];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<b class=\"x\">Tom & 'Jerry'</b>"),
            "&lt;b class=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"abcd"));
    }

    // Substitution never reaches into inline code, or its hash in the policy would go stale.
    #[test]
    fn inline_code_in_the_templates_has_no_placeholders() {
        for template in TEMPLATES {
            for tag in ["script", "style"] {
                for block in security::inline_blocks(template, tag) {
                    assert!(!block.contains("{{"), "a placeholder inside <{tag}>: {block}");
                }
            }
        }
        let policy = security::content_security_policy(&TEMPLATES);
        assert_eq!(policy.matches("'sha256-").count(), 3, "the page's script and style, the login style: {policy}");
    }
}
