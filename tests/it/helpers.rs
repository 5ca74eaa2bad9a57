//! The test harness: runs the real `hayloft` binary against a fresh database per test.
//!
//! The backend comes from `HAYLOFT_TEST_DATABASE`: unset or `sqlite` → a SQLite file in a temp
//! directory; `postgres` or a `postgres://` server URL (default `postgres://postgres@127.0.0.1:5432`)
//! → a new database created for the test and dropped after it. When PostgreSQL is requested but
//! unreachable, tests skip with a visible message — unless `HAYLOFT_TEST_STRICT=1` (set by CI),
//! which turns every skip into a failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::Value;
use tempfile::TempDir;

const DEFAULT_PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub fn strict() -> bool {
    std::env::var("HAYLOFT_TEST_STRICT").is_ok_and(|value| value == "1")
}

/// Skips the current test with a visible reason, or fails it in strict mode.
pub fn skip(reason: &str) {
    assert!(!strict(), "HAYLOFT_TEST_STRICT=1 forbids skipping: {reason}");
    #[expect(clippy::print_stderr, reason = "a skipped test must be visible in the test output")]
    {
        eprintln!("SKIPPED: {reason}");
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(future)
}

/// The PostgreSQL server to use, if the suite runs on PostgreSQL.
pub fn postgres_server() -> Option<String> {
    match std::env::var("HAYLOFT_TEST_DATABASE").ok().as_deref() {
        None | Some("") | Some("sqlite") => None,
        Some("postgres") => Some(DEFAULT_PG_SERVER.to_owned()),
        Some(url) => Some(url.trim_end_matches('/').to_owned()),
    }
}

/// A PostgreSQL database that exists for one test.
pub struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates a fresh database on `server`, or `None` (after `skip`) when it is unreachable.
    pub fn create(server: &str) -> Option<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hayloft_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            Instant::now().elapsed().subsec_nanos()
        );
        let admin_url = format!("{server}/postgres");
        let created = block_on(async {
            let mut admin = AsyncPgConnection::establish(&admin_url).await?;
            admin.batch_execute(&format!("CREATE DATABASE {name}")).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        });
        match created {
            Ok(()) => Some(Self { server: server.to_owned(), name }),
            Err(error) => {
                skip(&format!("PostgreSQL at {server} is not usable: {error}"));
                None
            }
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = format!("{}/postgres", self.server);
        let name = self.name.clone();
        let _ = block_on(async move {
            let mut admin = AsyncPgConnection::establish(&admin_url).await?;
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        });
    }
}

/// A working directory and a fresh database for one test.
pub struct TestEnv {
    pub dir: TempDir,
    pub database_url: String,
    _postgres: Option<PgDatabase>,
    extra_env: Vec<(String, String)>,
    /// The descriptor limit (`RLIMIT_NOFILE`) of the processes it starts, when set.
    open_files: Option<u64>,
}

impl TestEnv {
    /// A fresh environment on the suite's backend, or `None` when the test must be skipped.
    pub fn new() -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (database_url, postgres) = match postgres_server() {
            None => (dir.path().join("hayloft.db").to_string_lossy().into_owned(), None),
            Some(server) => {
                let database = PgDatabase::create(&server)?;
                (database.url(), Some(database))
            }
        };
        Some(Self { dir, database_url, _postgres: postgres, extra_env: Vec::new(), open_files: None })
    }

    /// A second node: its own directory, the same database and settings. `self` must outlive it
    /// (it owns the database).
    pub fn sibling(&self) -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("a temp dir"),
            database_url: self.database_url.clone(),
            _postgres: None,
            extra_env: self.extra_env.clone(),
            open_files: self.open_files,
        }
    }

    /// Sets an environment variable for every command this environment runs.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts every process with at most `limit` open descriptors, as `ulimit -n` would.
    pub fn open_files(mut self, limit: u64) -> Self {
        self.open_files = Some(limit);
        self
    }

    /// Disables every pipeline but `names`, so a test's server runs only what the test is about.
    pub fn only(mut self, names: &[&str]) -> Self {
        for name in hayloft::pipelines::KNOWN {
            if !names.contains(&name) {
                self = self.env(&format!("HAYLOFT_PIPELINES__{}__ENABLED", name.to_uppercase()), "false");
            }
        }
        self
    }

    pub fn command(&self) -> Command {
        let mut command = match self.open_files {
            None => Command::new(env!("CARGO_BIN_EXE_hayloft")),
            // The shell lowers its own limit, then becomes hayloft with the same arguments
            // (`$0` is hayloft's path, `$@` what the caller adds).
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_hayloft")]);
                shell
            }
        };
        command
            .current_dir(self.dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("HAYLOFT_DATABASE_URL", &self.database_url)
            .env("HAYLOFT_LOG_LEVEL", "info")
            // Tests run side by side: each server's SSH port is its own.
            .env("HAYLOFT_SSH_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null());
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        command
    }

    /// Runs `hayloft <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("hayloft runs")
    }

    /// Runs `hayloft <args> --json` and parses stdout, asserting success.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args);
        assert!(output.status.success(), "hayloft {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!("hayloft {args:?} printed no JSON ({error}): {}", String::from_utf8_lossy(&output.stdout))
        })
    }

    /// Starts `hayloft serve` on a free port and waits until it says where it listens.
    pub fn serve(&self) -> Server {
        static SERVERS: AtomicU32 = AtomicU32::new(0);
        let log_path = self.dir.path().join(format!("serve-{}.log", SERVERS.fetch_add(1, Ordering::SeqCst)));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut child = self
            .command()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("hayloft serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("read the listening line");
        let Some(base_url) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            panic!("serve did not start: {line:?}\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        };
        // With SSH on (the default), its address follows on the next line.
        let ssh_off = self.extra_env.iter().any(|(key, value)| key == "HAYLOFT_SSH__ENABLED" && value == "false");
        let ssh_addr = if ssh_off {
            None
        } else {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read the SSH line");
            line.trim().strip_prefix("ssh listening on ").and_then(|addr| addr.parse().ok())
        };
        Server { child, base_url, log_path, ssh_addr }
    }
}

/// A running `hayloft serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub log_path: PathBuf,
    /// Where its SSH server listens, when enabled.
    pub ssh_addr: Option<std::net::SocketAddr>,
}

impl Server {
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .expect("request succeeds")
    }

    /// What the server logged so far, without terminal colour codes.
    pub fn logs(&self) -> String {
        without_colours(&std::fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal delivered");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` without ANSI escape sequences (`ESC [ … letter`), so fields read as `key=value`.
pub fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
}

/// Polls `probe` until it returns `Some`, up to `limit`.
pub fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`eventually`] for tests that run Hayloft in-process: sleeps on the runtime, not the thread.
pub async fn eventually_async<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The recent runs of one pipeline, newest first.
pub fn runs_of(env: &TestEnv, pipeline: &str) -> Vec<Value> {
    let args = ["status", "--json", "--pipeline", pipeline, "--limit", "50"];
    // Polled while another process starts: before it has created the database there is no
    // run yet (read-only commands create no database).
    let output = env.run(&args);
    if !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("no database at") {
        return Vec::new();
    }
    let status = env.json(&args);
    let runs = status["recent_runs"].as_array().cloned().unwrap_or_default();
    runs.into_iter().filter(|run| run["pipeline"] == pipeline).collect()
}

/// The real upstream captures: `HAYLOFT_CAPTURES`, or `../shared/upstream` beside the clone.
/// Without them the test is skipped (a failure under `HAYLOFT_TEST_STRICT=1`).
pub fn captures() -> Option<PathBuf> {
    let dir = std::env::var_os("HAYLOFT_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream"));
    if dir.join("routes.json").is_file() {
        return Some(dir);
    }
    skip(&format!("the upstream captures are not at {} (set HAYLOFT_CAPTURES)", dir.display()));
    None
}

/// `hayloft replay <dir>` on a free port; stopped when dropped.
pub struct Replay {
    child: Child,
    pub url: String,
}

impl Replay {
    pub fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hayloft"))
            .arg("replay")
            .arg(dir)
            .args(["--addr", "127.0.0.1:0"])
            .env("HAYLOFT_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("hayloft replay starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("listening line");
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("replay did not start: {line:?}"));
        Self { url: format!("{url}/"), child }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A capture directory holding only an item-API answer, written from `body`.
pub fn items_capture(body: &[u8]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("api")).unwrap();
    std::fs::write(dir.path().join("api/items.json"), body).unwrap();
    let routes = serde_json::json!({ "routes": [{
        "file": "api/items.json", "path": "/api.php", "query": { "method": "items" }, "content_type": "application/json"
    }]});
    std::fs::write(dir.path().join("routes.json"), routes.to_string()).unwrap();
    dir
}

/// Every row of the items tables in `env`'s database, in key order.
pub fn items_snapshot(env: &TestEnv) -> Value {
    block_on(async {
        let url = hayloft::db::DatabaseUrl::parse(&env.database_url).unwrap();
        let db = hayloft::db::Database::connect(&url, 1).await.unwrap();
        hayloft::pipelines::items::load::snapshot(&db).await.unwrap()
    })
}

/// Every stored row of one table (in key order), as JSON: for comparing what a run left.
pub fn stored_rows<R: hayloft::pipelines::shared::table::StoredRow>(env: &TestEnv) -> Vec<Value> {
    block_on(async {
        let url = hayloft::db::DatabaseUrl::parse(&env.database_url).unwrap();
        let db = hayloft::db::Database::connect(&url, 1).await.unwrap();
        let mut rows: Vec<(String, Value)> = R::read_all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.key(), serde_json::to_value(&row).unwrap()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows.into_iter().map(|(_, row)| row).collect()
    })
}

/// Waits until a run of `pipeline` is in progress, and returns it. Generous: at a server's first
/// start every pipeline catches up in turn, the fan-outs' thousand pages included.
pub fn wait_until_running(env: &TestEnv, pipeline: &str) -> Value {
    eventually(Duration::from_secs(60), || {
        runs_of(env, pipeline).first().filter(|run| run["status"] == "running").cloned()
    })
    .unwrap_or_else(|| panic!("no {pipeline} run started: {:?}", runs_of(env, pipeline)))
}

/// Compares `actual` with `tests/snapshots/<name>`. With `HAYLOFT_UPDATE_SNAPSHOTS=1` the file
/// is (re)written instead: review the diff and commit it.
pub fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("HAYLOFT_UPDATE_SNAPSHOTS").is_some_and(|value| value == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("no snapshot at {}; run with HAYLOFT_UPDATE_SNAPSHOTS=1 to create it", path.display())
    });
    assert!(
        expected == actual,
        "{name} changed; if that is intended, run with HAYLOFT_UPDATE_SNAPSHOTS=1 and review the diff\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// One request a [`CountingUpstream`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The path with its query (`/item.php?id=11`).
    pub request: String,
    /// Who asked: each node of a cluster test sends its own User-Agent.
    pub user_agent: String,
}

/// A local upstream serving a capture directory (laid out by its routes.json) that records
/// every request and who sent it; stopped when dropped.
pub struct CountingUpstream {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
}

impl CountingUpstream {
    pub fn start(dir: &std::path::Path) -> Self {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let routes = Arc::new(hayloft::upstream::routes::Routes::load(dir).expect("a capture directory"));
        let dir = Arc::new(dir.to_owned());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let url = format!("http://{addr}/");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (accepted, stopping) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            // Blocking: the drop wakes it with one last connection.
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, routes, dir) = (accepted.clone(), routes.clone(), dir.clone());
                std::thread::spawn(move || answer(stream, &seen, &routes, &dir));
            }
        });
        Self { url, seen, stop, addr }
    }

    /// Every request so far, in the order they came.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn reset(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for CountingUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Answers the requests of one connection (keep-alive), recording each.
fn answer(
    stream: std::net::TcpStream,
    seen: &std::sync::Mutex<Vec<Seen>>,
    routes: &hayloft::upstream::routes::Routes,
    dir: &std::path::Path,
) {
    use std::io::Write as _;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut user_agent = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("user-agent") {
                    user_agent = value.trim().to_owned();
                }
            }
        }
        seen.lock().unwrap().push(Seen { request: target.clone(), user_agent });
        let (path, query) = hayloft::upstream::routes::split_request(&target);
        let found = routes
            .resolve(&path, &query)
            .and_then(|route| std::fs::read(dir.join(&route.file)).ok().map(|body| (body, route.content_type.clone())));
        let (status, body, content_type) = match found {
            Some((body, content_type)) => ("200 OK", body, content_type),
            None => ("404 Not Found", b"not captured".to_vec(), "text/plain".to_owned()),
        };
        let head =
            format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n", body.len());
        if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&body)).is_err() {
            return;
        }
    }
}
