//! Crash convergence: a process killed mid-run leaves a `running` row that the next start marks
//! abandoned and runs again, ending with exactly the rows of an uninterrupted run.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::helpers::{eventually, runs_of, wait_until_running, TestEnv};

// SIGKILL during a run: the next `serve` abandons the orphan and re-runs it to completion.
#[test]
fn sigkill_mid_run_is_abandoned_and_rerun_on_restart() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["demo"]);
    let slow = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "30s");
    let mut server = slow.serve();
    let orphan = wait_until_running(&slow, "demo");
    server.signal(Signal::SIGKILL);
    server.wait_exit(Duration::from_secs(5)).expect("killed");
    assert_eq!(runs_of(&slow, "demo")[0]["status"], "running", "a killed process cannot close its run");

    let env = slow.env("HAYLOFT_PIPELINES__DEMO__DELAY", "0s");
    let server = env.serve();
    let runs = eventually(Duration::from_secs(15), || {
        let runs = runs_of(&env, "demo");
        (runs.first()?["status"] == "succeeded").then_some(runs)
    })
    .unwrap_or_else(|| panic!("no recovery run succeeded: {:?}\n{}", runs_of(&env, "demo"), server.logs()));
    let orphan_now = runs.iter().find(|run| run["run_id"] == orphan["run_id"]).unwrap();
    assert_eq!(orphan_now["status"], "abandoned");
    assert_eq!((runs[0]["trigger"].as_str(), runs[0]["attempt"].as_i64()), (Some("recovery"), Some(2)));
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 100);
    assert_eq!(runs.len(), 2, "one abandoned run, one recovery run: {runs:?}");
}

// SIGKILL during a one-shot `hayloft run`: the next `hayloft run` converges to the same rows.
#[test]
fn killed_cli_run_converges_on_the_next_run() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["demo"]);
    let slow = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "30s");
    let mut child = slow.command().args(["run", "demo", "--json"]).spawn().unwrap();
    wait_until_running(&slow, "demo");
    child.kill().unwrap();
    child.wait().unwrap();

    let env = slow.env("HAYLOFT_PIPELINES__DEMO__DELAY", "0s");
    let rerun = env.json(&["run", "demo", "--json"]);
    assert_eq!(
        (rerun["status"].as_str(), rerun["inserted"].as_i64(), rerun["attempt"].as_i64()),
        (Some("succeeded"), Some(100), Some(2))
    );
    let runs = runs_of(&env, "demo");
    assert_eq!(runs[1]["status"], "abandoned");
}

// A run past its time limit is failed, recorded as timed out (a kind, not only words), and the
// next run is not blocked by it.
#[test]
fn a_run_past_its_timeout_is_recorded_as_timed_out() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["demo"]).env("HAYLOFT_RUN_TIMEOUT", "1s");
    let slow = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "30s");
    let output = slow.run(&["run", "demo", "--json"]);
    assert!(!output.status.success());
    let run: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((run["status"].as_str(), run["failure"].as_str()), (Some("failed"), Some("timed_out")), "{run}");
    assert!(run["error"].as_str().unwrap().contains("timed out"), "{run}");
    let env = slow.env("HAYLOFT_PIPELINES__DEMO__DELAY", "0s");
    let next = env.json(&["run", "demo", "--json"]);
    assert_eq!((next["status"].as_str(), next["failure"].as_str()), (Some("succeeded"), None), "{next}");
}
