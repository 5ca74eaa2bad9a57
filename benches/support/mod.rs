//! What the whole-process benchmarks share: starting `hayloft` subcommands, loading every source
//! from the captures, finding the captures, and reading a process's memory.
#![allow(dead_code, reason = "each benchmark uses a part of it")]
#![allow(clippy::print_stderr, reason = "a benchmark says on stderr what it skipped")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// A child process, killed when dropped.
pub struct Process(Child);

impl Process {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// The resident memory of process `pid`, in KiB (0 once it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hayloft <args>` (`serve` or `replay`) and returns it with the URL it listens on.
pub fn start(args: &[&str], envs: &[(&str, String)]) -> (Process, String) {
    start_logged(args, envs, None)
}

/// [`start`], with the process's log (stderr) appended to `log` when given.
pub fn start_logged(args: &[&str], envs: &[(&str, String)], log: Option<&Path>) -> (Process, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hayloft"));
    if let Some(log) = log {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("the log file opens");
        command.stderr(file);
    }
    // No SSH: these benchmarks measure HTTP, and SSH would leave a host key in the working
    // directory (the repository, under `cargo bench`).
    command.args(args).env("HAYLOFT_LOG_LEVEL", "warn").env("HAYLOFT_SSH__ENABLED", "false").stdout(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("hayloft starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("a first line");
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("did not start: {line:?}")).to_owned();
    (Process(child), url)
}

/// `hayloft run all --json` into `database_url` from `upstream`, with the politeness limits
/// raised for a local replay; fails the benchmark if a run fails.
pub fn run_all(database_url: &str, upstream: &str, work: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_hayloft"))
        .args(["run", "all", "--json"])
        .current_dir(work)
        .env("HAYLOFT_DATABASE_URL", database_url)
        .env("HAYLOFT_UPSTREAM_URL", upstream)
        .env("HAYLOFT_PIPELINES__DEMO__ENABLED", "false")
        .env("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "100000")
        .env("HAYLOFT_UPSTREAM__CONCURRENCY", "16")
        .env("HAYLOFT_LOG_LEVEL", "warn")
        .output()
        .expect("hayloft runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The real captures (`HAYLOFT_CAPTURES` or `../shared/upstream`), if present.
pub fn captures() -> Option<PathBuf> {
    let dir = std::env::var_os("HAYLOFT_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream"));
    dir.join("routes.json").is_file().then_some(dir)
}

/// The captures replayed over local HTTP (`hayloft replay`), with the upstream URL to use, or
/// `None` (after saying so) when there are no captures.
pub fn replayed_captures() -> Option<(Process, String)> {
    let Some(captures) = captures() else {
        eprintln!("SKIPPED: no captures at ../shared/upstream (set HAYLOFT_CAPTURES)");
        return None;
    };
    let (replay, url) = start(&["replay", &captures.to_string_lossy(), "--addr", "127.0.0.1:0"], &[]);
    Some((replay, format!("{url}/")))
}

/// Statements on the benchmark's PostgreSQL server (`HAYLOFT_BENCH_PG`, default
/// postgres://postgres@127.0.0.1:5432), for creating and dropping its databases.
pub struct PgAdmin {
    pub server: String,
    runtime: tokio::runtime::Runtime,
}

impl PgAdmin {
    pub fn new() -> Self {
        let server =
            std::env::var("HAYLOFT_BENCH_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Self { server, runtime }
    }

    pub fn execute(&self, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
        use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
        self.runtime.block_on(async {
            let mut admin = AsyncPgConnection::establish(&format!("{}/postgres", self.server)).await?;
            admin.batch_execute(sql).await?;
            Ok(())
        })
    }
}

/// Runs `bench(label, database_url, upstream, work)` on a fresh SQLite file, then on a fresh
/// PostgreSQL database named after `prefix` (skipped, with a message, when unreachable), with
/// the captures replayed as the upstream.
pub fn on_both_databases(prefix: &str, bench: impl Fn(&str, &str, &str, &Path)) {
    let Some((_replay, upstream)) = replayed_captures() else { return };
    let work = tempfile::tempdir().expect("a temp dir");
    let sqlite = work.path().join("bench.db").to_string_lossy().into_owned();
    bench("SQLite (file, WAL)", &sqlite, &upstream, work.path());

    let admin = PgAdmin::new();
    let name = format!("{prefix}_{}", std::process::id());
    if let Err(error) = admin.execute(&format!("CREATE DATABASE {name}")) {
        eprintln!("SKIPPED PostgreSQL: {error}");
        return;
    }
    bench("PostgreSQL", &format!("{}/{name}", admin.server), &upstream, work.path());
    let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
