//! Watching a running server: `/metrics`, and the dashboard in a real headless Chromium.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{eventually, skip, Server, TestEnv};

const TOKEN: &str = "test-admin-token";

fn demo_env() -> Option<TestEnv> {
    Some(
        TestEnv::new()?
            .only(&["demo"])
            .env("HAYLOFT_PIPELINES__DEMO__ROWS", "20")
            .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never")
            .env("HAYLOFT_ADMIN_TOKEN", TOKEN),
    )
}

fn start_run(server: &Server, pipeline: &str) -> reqwest::blocking::Response {
    reqwest::blocking::Client::new()
        .post(format!("{}/dashboard/run/{pipeline}", server.base_url))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap()
}

/// The value of one series in a scrape, if present.
fn series(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape.lines().find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

fn scrape(server: &Server) -> String {
    let response = server.get("/metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    response.text().unwrap()
}

// The counters move after a run, and after an actor panics and is restarted.
#[test]
fn metrics_count_runs_rows_requests_and_restarts() {
    let Some(env) = demo_env() else { return };
    let panic_file = env.dir.path().join("panic-now");
    let env = env.env("HAYLOFT_PIPELINES__DEMO__PANIC_WHEN", panic_file.to_str().unwrap());
    let server = env.serve();

    let before = scrape(&server);
    assert_eq!(series(&before, r#"hayloft_runs_total{pipeline="demo",status="succeeded"}"#), None);
    assert!(before.contains("# TYPE hayloft_runs_total counter"), "{before}");
    assert_eq!(series(&before, r#"hayloft_stage_mailbox_depth{pipeline="demo",stage="loader"}"#), Some(0.0));

    assert_eq!(start_run(&server, "demo").status(), 202);
    let after = eventually(Duration::from_secs(15), || {
        let text = scrape(&server);
        series(&text, r#"hayloft_runs_total{pipeline="demo",status="succeeded"}"#).map(|_| text)
    })
    .unwrap_or_else(|| panic!("no run counted:\n{}", scrape(&server)));
    assert_eq!(series(&after, r#"hayloft_rows_written_total{pipeline="demo",op="insert"}"#), Some(20.0));
    // When it last succeeded and last changed data, as Unix time: the run just now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    for name in ["last_success", "last_change"] {
        let at = series(&after, &format!(r#"hayloft_pipeline_{name}_timestamp_seconds{{pipeline="demo"}}"#));
        assert!(at.is_some_and(|at| (now - at).abs() < 300.0), "{name}: {at:?}\n{after}");
    }
    // The standard process series and the build.
    assert!(series(&after, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 1e6), "{after}");
    assert!(series(&after, "process_open_fds").is_some_and(|fds| fds > 3.0), "{after}");
    assert!(series(&after, "process_start_time_seconds").is_some_and(|at| at <= now + 1.0), "{after}");
    let build = after.lines().find(|line| line.starts_with("hayloft_build_info{")).unwrap_or_else(|| panic!("{after}"));
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");
    assert_eq!(series(&after, r#"hayloft_run_duration_seconds_count{pipeline="demo"}"#), Some(1.0));
    assert_eq!(series(&after, r#"hayloft_stage_received_total{pipeline="demo",stage="loader"}"#), Some(1.0));
    assert!(
        series(&after, r#"hayloft_http_requests_total{route="/metrics",method="GET",status="200"}"#).unwrap() >= 1.0,
        "{after}"
    );
    assert!(series(
        &after,
        r#"hayloft_http_requests_total{route="/dashboard/run/{pipeline}",method="POST",status="202"}"#
    )
    .is_some());

    let graphql = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .json(&json!({ "query": "{ pipelines { name } }" }))
        .send()
        .unwrap();
    assert_eq!(graphql.status(), 200);
    assert_eq!(series(&scrape(&server), r#"hayloft_graphql_request_duration_seconds_count{outcome="ok"}"#), Some(1.0));

    // An injected panic in the transformer: the run fails, the actor restarts, both are counted.
    std::fs::write(&panic_file, b"").unwrap();
    assert_eq!(start_run(&server, "demo").status(), 202);
    let restarted = eventually(Duration::from_secs(15), || {
        let text = scrape(&server);
        let restarts = series(&text, r#"hayloft_actor_restarts_total{actor="root/pipelines/demo/transformer"}"#)?;
        let failed = series(&text, r#"hayloft_runs_total{pipeline="demo",status="failed"}"#)?;
        (restarts >= 1.0 && failed >= 1.0).then_some(text)
    });
    assert!(restarted.is_some(), "no restart counted:\n{}\n{}", scrape(&server), server.logs());
    std::fs::remove_file(&panic_file).unwrap();

    // Health: alive, and ready (database, migrations, scheduler).
    let ready: Value = server.get("/readyz").json().unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
}

/// A chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
    session: Option<String>,
    client: reqwest::blocking::Client,
}

impl Driver {
    fn start() -> Option<Self> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists());
        let driver = which("chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            skip("headless Chromium and chromedriver are not installed (Debian: chromium chromium-driver)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let mut driver = Self { child, url, session: None, client };
        let ready = eventually(Duration::from_secs(20), || {
            let status: Value = driver.client.get(format!("{}/status", driver.url)).send().ok()?.json().ok()?;
            (status["value"]["ready"] == true).then_some(())
        });
        assert!(ready.is_some(), "chromedriver did not start");
        let created = driver.call(
            "POST",
            "/session",
            json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
                "binary": chromium,
                // No host but this one resolves: a page that needs the network shows it.
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
            }}}}),
        );
        driver.session = Some(created["sessionId"].as_str().expect("a WebDriver session").to_owned());
        Some(driver)
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = match &self.session {
            Some(session) if path != "/session" => format!("{}/session/{session}{path}", self.url),
            _ => format!("{}{path}", self.url),
        };
        let request = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url).json(&body),
        };
        let answer: Value = request.send().expect("chromedriver answers").json().expect("JSON from chromedriver");
        assert!(answer["value"]["error"].is_null(), "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    fn find(&self, css: &str) -> String {
        let element = self.call("POST", "/element", json!({ "using": "css selector", "value": css }));
        element
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .expect("an element")
            .to_owned()
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/value"), json!({ "text": text }));
    }

    fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", "/screenshot", Value::Null);
        base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap()).unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.session.is_some() {
            let _ = self
                .client
                .delete(format!("{}/session/{}", self.url, self.session.as_deref().unwrap_or_default()))
                .send();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|path| path.exists())
}

/// Where test artifacts go: `HAYLOFT_TEST_ARTIFACTS`, or a folder in the temp dir.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("HAYLOFT_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("hayloft-test-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// The dashboard in headless Chromium: every pipeline is listed; after signing in with the admin
// token a run is started, and the new run and a new log line appear without a reload.
#[test]
fn dashboard_shows_pipelines_and_updates_live() {
    let Some(env) = demo_env() else { return };
    let Some(browser) = Driver::start() else { return };
    // A failing pipeline: item pages with no items stored to fan out from.
    let failed = env.run(&["run", "item_pages"]);
    assert_eq!(failed.status.code(), Some(1));
    let server = env.serve();

    browser.goto(&format!("{}/", server.base_url));
    let names =
        browser.script("return [...document.querySelectorAll('[data-pipeline]')].map(row => row.dataset.pipeline)");
    let names: Vec<&str> = names.as_array().unwrap().iter().map(|name| name.as_str().unwrap()).collect();
    let mut expected: Vec<&str> = vec!["item_pages"];
    expected.extend(hayloft::pipelines::KNOWN.iter().filter(|name| **name != "item_pages"));
    assert_eq!(names, expected, "every pipeline, the failing one first, then in registry order");
    assert_eq!(browser.script("return document.querySelector('tr.attention').dataset.pipeline"), json!("item_pages"));
    // Schedules in words (their time zones are covered where the words are made).
    assert_eq!(
        browser.script("return document.querySelector(\"[data-pipeline='demo'] .schedule\").textContent"),
        json!("never (only when asked)")
    );
    // The tree folded: a count, and the whole tree behind a disclosure.
    let tree = browser.script("return document.querySelector('#tree p').textContent");
    assert!(tree.as_str().unwrap().contains("actors running"), "{tree}");
    assert_eq!(browser.script("return document.querySelectorAll('#tree details .tree').length"), json!(1));
    // The chart has the failed run, drawn as SVG.
    assert_eq!(browser.script("return document.querySelectorAll('#activity svg .run.failed').length"), json!(1));
    assert_eq!(
        browser.script("return document.querySelectorAll('button.run').length"),
        json!(0),
        "no buttons without the token"
    );
    // The inline stylesheet and script run under the Content-Security-Policy (allowed by hash).
    assert_eq!(browser.script("return getComputedStyle(document.querySelector('header')).position"), json!("sticky"));
    assert!(browser
        .script("return document.getElementById('tree').textContent")
        .as_str()
        .unwrap()
        .contains("scheduler"));

    // Sign in with the token.
    browser.goto(&format!("{}/login", server.base_url));
    browser.type_into("#token", TOKEN);
    browser.click("#sign-in");
    let buttons = eventually(Duration::from_secs(10), || {
        let count = browser.script("return document.querySelectorAll('button.run').length").as_u64()?;
        (count as usize == hayloft::pipelines::KNOWN.len()).then_some(count)
    });
    assert!(buttons.is_some(), "run buttons appear once signed in");
    let live = eventually(Duration::from_secs(10), || {
        (browser.script("return document.getElementById('live').classList.contains('on')") == json!(true)).then_some(())
    });
    assert!(live.is_some(), "the event stream connects");

    // A marker that a reload would wipe out, then a run.
    browser.script("window.__noReload = true; return null");
    let lines_before = browser.script("return document.querySelectorAll('#logs .line').length").as_u64().unwrap();
    browser.click("button.run[data-run='demo']");
    let status = "return document.querySelector(\"[data-pipeline='demo'] .last-status\").textContent";
    let finished = eventually(Duration::from_secs(20), || {
        let text = browser.script(status);
        text.as_str()?.contains("succeeded").then_some(text)
    });
    assert!(finished.is_some(), "the run shows up: {:?}\n{}", browser.script(status), server.logs());
    let new_line = eventually(Duration::from_secs(10), || {
        let lines =
            browser.script("return [...document.querySelectorAll('#logs .line')].map(line => line.textContent)");
        let lines = lines.as_array()?;
        (lines.len() as u64 > lines_before
            && lines.iter().any(|line| line.as_str().unwrap_or_default().contains("run succeeded")))
        .then_some(())
    });
    assert!(new_line.is_some(), "a new log line appears");
    assert!(browser.script("return document.querySelector('#changes').textContent").as_str().unwrap().contains("demo"));
    // The chart, the table counts and the last change follow the run without a reload.
    let charted = eventually(Duration::from_secs(10), || {
        (browser.script("return document.querySelectorAll('#activity svg .run.succeeded').length") == json!(1))
            .then_some(())
    });
    assert!(charted.is_some(), "{:?}", browser.script("return document.getElementById('activity').innerHTML"));
    let counted = eventually(Duration::from_secs(10), || {
        (browser.script("return document.querySelector(\"#tables [data-entity='demo'] dd\").textContent")
            == json!("20"))
        .then_some(())
    });
    assert!(counted.is_some(), "{:?}", browser.script("return document.getElementById('tables').textContent"));
    let change = browser.script("return document.querySelector(\"[data-pipeline='demo'] .last-change\").textContent");
    assert!(change.as_str().unwrap().contains("+20 ~0 −0"), "{change}");
    assert_eq!(browser.script("return window.__noReload === true"), json!(true), "the page was never reloaded");

    let path = artifacts().join(format!(
        "dashboard-{}.png",
        if env.database_url.starts_with("postgres") { "postgres" } else { "sqlite" }
    ));
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(&path, png).unwrap();
    #[expect(clippy::print_stderr, reason = "say where the artifact is")]
    {
        eprintln!("dashboard screenshot: {}", path.display());
    }

    // The chart, the tables and the folded tree, for people to look at.
    browser.script("document.getElementById('activity-card').scrollIntoView(); window.scrollBy(0, -80); return null");
    std::fs::write(artifacts().join("dashboard-activity.png"), browser.screenshot()).unwrap();

    // A phone-sized window gets the same page without horizontal scrolling of the whole body.
    browser.call("POST", "/window/rect", json!({ "width": 390, "height": 844 }));
    let overflow = browser.script("return document.documentElement.scrollWidth <= window.innerWidth + 1");
    assert_eq!(overflow, json!(true), "the page fits a phone's width");
    let pipelines = browser.script(
        "const table = document.getElementById('pipelines'); return table.scrollWidth <= table.clientWidth + 1",
    );
    assert_eq!(pipelines, json!(true), "the pipelines fit too: nothing cut off at the right");
    std::fs::write(artifacts().join("dashboard-phone.png"), browser.screenshot()).unwrap();
}

// GraphiQL with no network: every asset comes from Hayloft, the documentation explorer fills
// from the schema (the standard introspection query passes the limits), and a query runs.
#[test]
fn graphiql_works_offline() {
    let Some(env) = demo_env() else { return };
    let Some(browser) = Driver::start() else { return };
    let server = env.serve();
    browser.goto(&format!("{}/graphiql", server.base_url));
    let docs_button = "button[aria-label='Show Documentation Explorer']";
    let loaded = eventually(Duration::from_secs(30), || {
        let script = format!("return document.querySelector(\"{docs_button}\") !== null");
        (browser.script(&script) == json!(true)).then_some(())
    });
    assert!(loaded.is_some(), "GraphiQL renders: {:?}", browser.script("return document.body.innerText"));
    let foreign = browser.script(
        "return performance.getEntriesByType('resource').map(entry => entry.name).filter(name => !name.startsWith(location.origin) && !name.startsWith('ws'))",
    );
    assert_eq!(foreign, json!([]), "nothing is loaded from elsewhere");

    browser.click(docs_button);
    let explorer = eventually(Duration::from_secs(30), || {
        let text = browser
            .script("const docs = document.querySelector('.graphiql-doc-explorer'); return docs ? docs.innerText : ''");
        text.as_str().filter(|text| text.contains("Query")).map(str::to_owned)
    });
    assert!(
        explorer.is_some(),
        "the schema loads into the explorer: {:?}",
        browser.script("return document.body.innerText")
    );
    browser.click("button[aria-label='Hide Documentation Explorer']");

    browser.click(".graphiql-execute-button");
    let answered = eventually(Duration::from_secs(30), || {
        let text = browser
            .script("const result = document.querySelector('.result-window'); return result ? result.innerText : ''");
        text.as_str().filter(|text| text.contains("totalCount")).map(str::to_owned)
    });
    assert!(answered.is_some(), "the query runs: {:?}", browser.script("return document.body.innerText"));
    let path = artifacts().join("graphiql.png");
    std::fs::write(&path, browser.screenshot()).unwrap();
    #[expect(clippy::print_stderr, reason = "say where the artifact is")]
    {
        eprintln!("graphiql screenshot: {}", path.display());
    }
}
