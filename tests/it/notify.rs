//! Notifications through the outbox: retried until accepted, never lost, re-sent after a crash.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helpers::{eventually, runs_of, without_colours, TestEnv};

/// A webhook on 127.0.0.1 that answers 500 to its first `failures` requests, then 200, and
/// keeps the `content` of every message it accepted.
struct Receiver {
    url: String,
    accepted: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicUsize>,
}

impl Receiver {
    fn start(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (sink, counter) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let status = if number < failures { "500 Internal Server Error" } else { "200 OK" };
                if number >= failures {
                    let message: Value = serde_json::from_slice(&body).unwrap();
                    sink.lock().unwrap().push(message["content"].as_str().unwrap().to_owned());
                }
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Self { url, accepted, requests }
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

fn notify_env(receiver: &Receiver) -> Option<TestEnv> {
    notify_env_with(receiver, "")
}

/// A demo-only environment whose `[notify]` section posts to `receiver`, plus `extra` keys.
fn notify_env_with(receiver: &Receiver, extra: &str) -> Option<TestEnv> {
    let env = TestEnv::new()?.only(&["demo"]).env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never");
    let config = format!(
        "[notify]\nretry_base = \"100ms\"\nretry_max = \"500ms\"\n{extra}\n[[notify.webhooks]]\nname = \"ops\"\nurl = \"{}\"\n",
        receiver.url
    );
    std::fs::write(env.dir.path().join("hayloft.toml"), config).unwrap();
    Some(env)
}

fn run_demo(env: &TestEnv, rows: &str) -> Value {
    let env_rows =
        env.command().args(["run", "demo", "--json"]).env("HAYLOFT_PIPELINES__DEMO__ROWS", rows).output().unwrap();
    serde_json::from_slice(&env_rows.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&env_rows.stderr)))
}

// A receiver that fails its first attempts still gets every message, exactly once, in the
// order they were written.
#[test]
fn every_message_arrives_once_after_retries() {
    let receiver = Receiver::start(3);
    let Some(env) = notify_env(&receiver) else { return };
    let server = env.serve();
    assert_eq!(run_demo(&env, "20")["inserted"], 20);
    assert_eq!(run_demo(&env, "25")["inserted"], 5);
    assert_eq!(run_demo(&env, "22")["deleted"], 3);
    assert_eq!(run_demo(&env, "22")["unchanged"], 22, "no change, no message");
    let panic_file = env.dir.path().join("panic");
    std::fs::write(&panic_file, b"").unwrap();
    let failed = env
        .command()
        .args(["run", "demo", "--json"])
        .env("HAYLOFT_PIPELINES__DEMO__PANIC_WHEN", &panic_file)
        .env("HAYLOFT_PIPELINES__DEMO__ROWS", "22")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(failed["failure"], "panicked", "{failed}");

    let all = eventually(Duration::from_secs(20), || {
        let accepted = receiver.accepted();
        (accepted.len() >= 4).then_some(accepted)
    })
    .unwrap_or_else(|| panic!("not everything arrived: {:?}\n{}", receiver.accepted(), server.logs()));
    assert!(all[0].starts_with("demo: +20 new, 0 changed, 0 removed in "), "{all:?}");
    assert!(all[0].contains("— new: Sample 0001, Sample 0002, Sample 0003 and 17 more"), "{all:?}");
    assert!(all[1].starts_with("demo: +5 new, 0 changed, 0 removed"), "{all:?}");
    assert!(all[2].starts_with("demo: +0 new, 0 changed, 3 removed"), "{all:?}");
    assert!(all[3].contains("failed") && all[3].contains("demo transform asked to panic"), "{all:?}");
    // Once all four are marked delivered nothing can send them again: then count.
    let marked = eventually(Duration::from_secs(30), || {
        (server.logs().matches("notification delivered").count() >= 4).then_some(())
    });
    assert!(marked.is_some(), "{}", server.logs());
    assert_eq!(receiver.accepted().len(), 4, "exactly once each: {:?}", receiver.accepted());
    assert_eq!(receiver.requests.load(Ordering::SeqCst), 7, "three refusals, then four deliveries");
    assert!(server.logs().contains("notification not delivered; will retry"));
}

// Killed between sending and marking: the message is sent again after the restart (at least
// once; the duplicate is bounded to that window), and nothing is lost.
#[test]
fn a_crash_after_sending_resends_on_restart() {
    let receiver = Receiver::start(0);
    let Some(env) = notify_env(&receiver) else { return };
    let env = env.env("HAYLOFT_PAUSE_AT", "outbox-after-send");
    let mut first = env.serve();
    assert_eq!(run_demo(&env, "20")["inserted"], 20);
    let paused_at = eventually(Duration::from_secs(20), || first.logs().contains("paused at failpoint").then_some(()));
    assert!(paused_at.is_some(), "{}", first.logs());
    assert_eq!(receiver.accepted().len(), 1, "sent once before the crash");
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");

    let env = env.env("HAYLOFT_PAUSE_AT", "");
    let second = env.serve();
    let again = eventually(Duration::from_secs(20), || (receiver.accepted().len() >= 2).then_some(()));
    assert!(again.is_some(), "not re-sent after the restart:\n{}", second.logs());
    let accepted = receiver.accepted();
    assert_eq!(accepted[0], accepted[1], "the same message, again");
    assert_eq!(run_demo(&env, "21")["inserted"], 1);
    let third = eventually(Duration::from_secs(20), || (receiver.accepted().len() >= 3).then_some(()));
    assert!(third.is_some(), "later messages still flow");
    // The re-sent message and the new one, both marked: nothing is left to send.
    let marked = eventually(Duration::from_secs(30), || {
        (second.logs().matches("notification delivered").count() >= 2).then_some(())
    });
    assert!(marked.is_some(), "{}", second.logs());
    assert_eq!(receiver.accepted().len(), 3, "{:?}", receiver.accepted());
}

// Killed after the load committed its changes and before the run was closed: the retry finds
// nothing left to write, yet the "+20 new" message still arrives, exactly once, because it was
// written in the transaction that wrote the changes.
#[test]
fn a_crash_between_load_and_finish_still_announces_the_changes_once() {
    let receiver = Receiver::start(0);
    let Some(env) = notify_env(&receiver) else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__ROWS", "20");
    let log_path = env.dir.path().join("killed-run.log");
    let mut child = env
        .command()
        .args(["run", "demo", "--json"])
        .env("HAYLOFT_PAUSE_AT", "demo.after-write")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let log = || without_colours(&std::fs::read_to_string(&log_path).unwrap_or_default());
    let paused = eventually(Duration::from_secs(30), || log().contains("paused at failpoint").then_some(()));
    assert!(paused.is_some(), "the run never reached the point after its load:\n{}", log());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(runs_of(&env, "demo")[0]["status"], "running", "killed before the run was closed");
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 20, "the load had committed");

    let server = env.serve();
    let retried = eventually(Duration::from_secs(30), || {
        let runs = runs_of(&env, "demo");
        (runs.first()?["status"] == "succeeded").then_some(runs)
    })
    .unwrap_or_else(|| panic!("no recovery run succeeded: {:?}\n{}", runs_of(&env, "demo"), server.logs()));
    assert_eq!((retried[0]["attempt"].as_i64(), retried[0]["inserted"].as_i64()), (Some(2), Some(0)), "{retried:?}");
    // A later message goes out after every earlier one of its channel: once it is here,
    // whatever the crash and the retry wrote has been delivered too.
    assert_eq!(run_demo(&env, "21")["inserted"], 1);
    let all = eventually(Duration::from_secs(30), || {
        let accepted = receiver.accepted();
        accepted.iter().any(|text| text.starts_with("demo: +1 new")).then_some(accepted)
    })
    .unwrap_or_else(|| panic!("nothing arrived: {:?}\n{}", receiver.accepted(), server.logs()));
    assert_eq!(all.len(), 2, "the lost-run message once, then the next one: {all:?}");
    assert!(all[0].starts_with("demo: +20 new, 0 changed, 0 removed in "), "{all:?}");
    assert!(all[0].contains("— new: Sample 0001, Sample 0002, Sample 0003 and 17 more"), "{all:?}");
}

// The daily report goes out on its schedule, summing the day's runs per pipeline.
#[test]
fn the_daily_report_goes_out_on_schedule() {
    let receiver = Receiver::start(0);
    let Some(env) = notify_env_with(&receiver, "daily_report = \"@every 2s\"\non_changes = false\n") else { return };
    assert_eq!(run_demo(&env, "20")["inserted"], 20);
    let server = env.serve();
    let report = eventually(Duration::from_secs(20), || {
        receiver.accepted().into_iter().find(|text| text.starts_with("Hayloft daily report"))
    });
    let report = report.unwrap_or_else(|| panic!("no report: {:?}\n{}", receiver.accepted(), server.logs()));
    assert!(report.ends_with("demo: 1 runs, +20 ~0 -0"), "{report}");
    assert!(receiver.accepted().iter().all(|text| text.starts_with("Hayloft daily report")), "on_changes = false");
}
