//! `hayloft serve`: start-up on defaults, health, graceful shutdown, no overlapping runs.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::helpers::{eventually, runs_of, wait_until_running, TestEnv};

// With no configuration at all, serve starts on SQLite in the working directory and answers.
#[test]
fn serve_answers_healthz_on_defaults() {
    let Some(env) = TestEnv::new() else { return };
    // The pure defaults (a SQLite file in the working directory), whatever the suite's backend;
    // only the port is chosen by the test, as 8080 may be taken on a test machine.
    let env = env.env("HAYLOFT_DATABASE_URL", "hayloft.db");
    let dir = env.dir.path().to_owned();
    let server = env.serve();
    let health: serde_json::Value = server.get("/healthz").json().unwrap();
    assert_eq!(health["status"], "ok");
    let ready: serde_json::Value = server.get("/readyz").json().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["database"]["backend"], "sqlite");
    assert_eq!((ready["migrations"]["ok"].as_bool(), ready["scheduler"]["ok"].as_bool()), (Some(true), Some(true)));
    assert!(dir.join("hayloft.db").exists(), "the default database file is created");
    // The container health check agrees.
    let addr = server.base_url.trim_start_matches("http://").to_owned();
    let addr = addr.as_str();
    let check = env.run(&["healthcheck", "--addr", addr]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    drop(server);
    let stopped = env.run(&["healthcheck", "--addr", addr]);
    assert_eq!(
        stopped.status.code(),
        Some(1),
        "a stopped server is unhealthy (1: container runtimes keep 2 for themselves)"
    );
}

// The first start runs each never-run pipeline once (misfire); with no configuration every
// source comes from the embedded sample data, no network needed, and loads cleanly.
#[test]
fn first_start_runs_each_pipeline_once() {
    let Some(env) = TestEnv::new() else { return };
    let server = env.serve();
    for pipeline in hayloft::pipelines::KNOWN {
        // Generous: the fan-outs write their thousand pages one transaction each.
        let runs = eventually(Duration::from_secs(90), || {
            let runs = runs_of(&env, pipeline);
            runs.iter().any(|run| run["status"] == "succeeded").then_some(runs)
        })
        .unwrap_or_else(|| panic!("no {pipeline} run succeeded:\n{}", server.logs()));
        assert_eq!(runs[0]["trigger"], "misfire");
    }
    // The first runs start together, so some sources were read before the items existed. The
    // stored names changed since, so the next run reads those pages again and links them: every
    // source's sample refers only to sample items and ends with nothing unresolved.
    drop(server);
    let output = env.command().args(["run", "all", "--json"]).output().unwrap();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let summary: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(summary["status"], "succeeded", "{summary}");
        if summary["pipeline"] != "items" {
            // (The sample item list reproduces the real one's stale recipe rows on purpose.)
            let unresolved = summary["notes"].as_array().unwrap().iter().any(|note| {
                let note = note.as_str().unwrap();
                note.contains("did not resolve") || note.contains("not in the stored")
            });
            assert!(!unresolved, "{summary}");
        }
    }
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 100);
    assert_eq!(env.json(&["count", "items", "--json"])["count"], 1138);
    // In text, `run all` ends with a summary: one line per pipeline and the totals.
    let text = env.command().env("HAYLOFT_PIPELINES__DEMO__DELAY", "12s").args(["run", "all"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    let pipelines = hayloft::pipelines::KNOWN.len();
    assert!(
        stdout.contains(&format!("summary: {pipelines} pipelines, {pipelines} succeeded, 0 did not, in ")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line.trim_start().starts_with("item_pages") && line.contains("succeeded")),
        "{stdout}"
    );
    // stderr is not a terminal here: a run that takes a while says so in plain lines.
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(stderr.lines().any(|line| line.starts_with("demo run ") && line.contains(": running for ")), "{stderr}");
}

// SIGTERM lets a running run finish within the grace period, then exits cleanly.
#[test]
fn sigterm_lets_the_running_run_finish() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "1500ms").env("HAYLOFT_SHUTDOWN_GRACE", "10s");
    let mut server = env.serve();
    wait_until_running(&env, "demo");
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(15)).expect("serve exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", server.logs());
    let runs = runs_of(&env, "demo");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
}

// A run still going when the grace period ends is marked abandoned, and a retry is queued.
#[test]
fn sigterm_past_the_grace_period_abandons_the_run() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "60s").env("HAYLOFT_SHUTDOWN_GRACE", "300ms");
    let mut server = env.serve();
    wait_until_running(&env, "demo");
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(10)).expect("serve exits after SIGTERM");
    assert!(status.success(), "{}", server.logs());
    let runs = runs_of(&env, "demo");
    let statuses: Vec<_> = runs.iter().map(|run| run["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["queued", "abandoned"], "{runs:?}");
    assert_eq!(runs[0]["attempt"], 2);
}

// While `serve` runs a pipeline, `hayloft run` of the same pipeline from another process is refused.
#[test]
fn two_processes_never_run_one_pipeline_at_once() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "5s");
    let server = env.serve();
    let running = wait_until_running(&env, "demo");
    let output = env.run(&["run", "demo", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let refusal: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refusal["status"], "refused");
    let reason = refusal["error"].as_str().unwrap();
    assert!(reason.contains("already running") && reason.contains(&running["run_id"].to_string()), "{reason}");
    drop(server);
}

// A script that reads the first line and closes the pipe must not take the server down with
// it. Here the pipe is closed before the server writes at all, so every line it prints fails:
// the server must carry on regardless (the port is chosen up front, as the line cannot be read).
#[test]
fn serve_survives_a_closed_stdout() {
    let Some(env) = TestEnv::new() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = env
        .command()
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(writer)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let health = eventually(Duration::from_secs(10), || reqwest::blocking::get(&url).ok());
    // The stdout writes came before the first answer; one more request that goes through the
    // actors (database, scheduler) shows the server still works after them.
    let ready = reqwest::blocking::get(format!("http://127.0.0.1:{port}/readyz")).map(|response| response.status());
    let alive = child.try_wait().unwrap().is_none();
    assert_eq!(ready.ok().map(|status| status.as_u16()), Some(200), "/readyz after the closed stdout");
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the server exited after its stdout closed");
    assert_eq!(health.expect("the server answered").status(), 200);
}
