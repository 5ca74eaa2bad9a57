//! The command line: run, count, status, pipelines, migrate, and its errors.

use crate::helpers::TestEnv;

// `run --json` prints one object with the run's counts; an immediate re-run writes nothing.
#[test]
fn run_reports_counts_and_an_unchanged_rerun_writes_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let first = env.json(&["run", "demo", "--json"]);
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["pipeline"], "demo");
    assert_eq!(
        (first["inserted"].as_i64(), first["updated"].as_i64(), first["deleted"].as_i64()),
        (Some(100), Some(0), Some(0))
    );
    for key in ["run_id", "unchanged", "duration_ms", "error"] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    let second = env.json(&["run", "demo", "--json"]);
    assert_eq!(
        (second["inserted"].as_i64(), second["updated"].as_i64(), second["unchanged"].as_i64()),
        (Some(0), Some(0), Some(100))
    );
    assert!(second["run_id"].as_i64() > first["run_id"].as_i64());
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 100);
    assert_eq!(env.json(&["count", "runs", "--json"])["count"], 2);
    assert_eq!(env.json(&["count", "changes", "--json"])["count"], 100, "only the first run changed anything");
}

// Shrinking the source deletes exactly the rows that vanished, and the change feed says so.
#[test]
fn vanished_rows_are_deleted_and_recorded() {
    let Some(env) = TestEnv::new() else { return };
    env.json(&["run", "demo", "--json"]);
    let env = env.env("HAYLOFT_PIPELINES__DEMO__ROWS", "95");
    let run = env.json(&["run", "demo", "--json"]);
    assert_eq!((run["deleted"].as_i64(), run["unchanged"].as_i64()), (Some(5), Some(95)));
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 95);
    assert_eq!(env.json(&["count", "changes", "--json"])["count"], 105);
}

// A fan-out with nothing to fan out from (no items stored yet) is not "every page gone": the
// run fails and says what to do, rather than succeeding with 0 rows or deleting what is stored.
#[test]
fn a_fan_out_with_no_pages_to_fetch_fails_and_says_why() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["run", "item_pages", "--json"]);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["status"], "failed", "{summary}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(error.contains("no items are stored yet; run the items pipeline first"), "{summary}");
    assert_eq!(env.json(&["count", "item-details", "--json"])["count"], 0);
}

// A fan-out page's parser notes reach the run's report, each after its page: location pages read
// before any item is stored name item ids that are not stored yet; once items are loaded, the
// pages are read again (the stored item list changed) and resolve.
#[test]
fn fan_out_page_notes_reach_the_run_report() {
    let Some(env) = TestEnv::new() else { return };
    let early = env.json(&["run", "locations", "--json"]);
    assert_eq!(early["status"], "succeeded", "{early}");
    let notes: Vec<&str> = early["notes"].as_array().unwrap().iter().filter_map(serde_json::Value::as_str).collect();
    assert!(
        notes.iter().any(|note| note.starts_with("/location.php?") && note.contains("not in the stored item list yet")),
        "{notes:?}"
    );
    env.json(&["run", "items", "--json"]);
    let later = env.json(&["run", "locations", "--json"]);
    let unresolved = later["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .any(|note| note.contains("not in the stored item list yet"));
    assert!(!unresolved, "{later}");
}

// Unknown pipelines and entities are refused with the list of known ones.
#[test]
fn unknown_names_are_clear_errors() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["run", "nosuch"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown pipeline \"nosuch\"") && stderr.contains("demo"), "{stderr}");
    let output = env.run(&["count", "widgets"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown entity \"widgets\"") && stderr.contains("runs"), "{stderr}");
}

// A bad configuration value stops the program with a message naming the key.
#[test]
fn bad_configuration_is_a_clear_error() {
    let Some(env) = TestEnv::new() else { return };
    std::fs::write(env.dir.path().join("hayloft.toml"), "addr = \"not-an-address\"\n").unwrap();
    let output = env.run(&["status"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("addr"), "{stderr}");

    std::fs::write(env.dir.path().join("hayloft.toml"), "[pipelines.demo]\nschedule = \"whenever\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&env.run(&["status"]).stderr).into_owned();
    assert!(stderr.contains("invalid schedule \"whenever\""), "{stderr}");

    let output = env.run(&["--config", "missing.toml", "status"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}

// `pipelines` shows each pipeline's schedule and next run; a disabled pipeline has none.
#[test]
fn pipelines_lists_schedules_and_next_runs() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "0 0 * * * *");
    let pipelines = env.json(&["pipelines", "--json"]);
    let names: Vec<_> =
        pipelines.as_array().unwrap().iter().map(|pipeline| pipeline["name"].as_str().unwrap()).collect();
    assert_eq!(names, hayloft::pipelines::KNOWN, "dependency order: items first");
    assert_eq!(names[0], "items");
    let demo = &pipelines[names.len() - 1];
    assert_eq!(demo["name"], "demo");
    assert_eq!(demo["schedule"], "0 0 * * * *");
    assert!(demo["next_run"].as_str().unwrap().ends_with(":00:00Z"), "{demo}");
    assert!(demo["last_run"].is_null());

    let env = env.env("HAYLOFT_PIPELINES__DEMO__ENABLED", "false");
    let demo = &env.json(&["pipelines", "--json"])[names.len() - 1];
    assert_eq!((demo["enabled"].as_bool(), demo["next_run"].is_null()), (Some(false), true));
}

// `migrate` applies the migrations once; running it again is a no-op.
#[test]
fn migrate_is_idempotent() {
    let Some(env) = TestEnv::new() else { return };
    let first = env.run(&["migrate"]);
    assert!(first.status.success());
    let second = env.run(&["migrate"]);
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "database is up to date");
}

// `demo-data` writes a capture directory that a file:// upstream loads, at any scale.
#[test]
fn generated_sample_data_loads_through_a_file_upstream() {
    let Some(env) = TestEnv::new() else { return };
    let out = env.dir.path().join("sample");
    let output = env.run(&["demo-data", "--scale", "2", "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.join("routes.json").is_file() && out.join("api/items.json").is_file());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &format!("file://{}/", out.display()));
    let run = env.json(&["run", "items", "--json"]);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(env.json(&["count", "items", "--json"])["count"], 2 * 1138);
    // The generator's own quirks are reported like the real API's.
    let notes = run["notes"].as_array().unwrap();
    assert!(notes.iter().any(|note| note.as_str().unwrap().contains("stale recipe rows")), "{notes:?}");
}

// `--log-format json` prints one JSON object per line, and each names the actor that wrote it.
#[test]
fn json_logs_name_the_actor() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["--log-format", "json", "run", "demo"]);
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect();
    let finished = lines.iter().find(|line| line["fields"]["message"] == "run succeeded").expect("a run line");
    assert_eq!(finished["span"]["path"], "root/pipelines/demo/runner");
    assert_eq!(finished["fields"]["pipeline"], "demo");
}

// `hayloft pipelines | head -1`: once the reader is gone, the command stops quietly.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let Some(env) = TestEnv::new() else { return };
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output =
        env.command().args(["pipelines"]).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
