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

// Shrinking the source deletes exactly the rows that vanished, and the change feed says so:
// `changes` sums a run up per entity, `--rows` lists the rows by name (a deleted row by the name
// it had), `--entity` and `--limit` narrow it.
#[test]
fn vanished_rows_are_deleted_and_recorded() {
    let Some(env) = TestEnv::new() else { return };
    env.json(&["run", "demo", "--json"]);
    let env = env.env("HAYLOFT_PIPELINES__DEMO__ROWS", "95");
    let run = env.json(&["run", "demo", "--json"]);
    assert_eq!((run["deleted"].as_i64(), run["unchanged"].as_i64()), (Some(5), Some(95)));
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 95);
    assert_eq!(env.json(&["count", "changes", "--json"])["count"], 105);

    let summary = String::from_utf8_lossy(&env.run(&["changes"]).stdout).into_owned();
    assert!(summary.starts_with(&format!("run #{}: 5 changes\n", run["run_id"])), "{summary}");
    assert!(summary.contains("  demo: +0 ~0 −5\n") && !summary.contains("delete demo"), "{summary}");
    let rows = String::from_utf8_lossy(&env.run(&["changes", "--rows", "--limit", "2"]).stdout).into_owned();
    assert!(rows.contains("  delete demo 96 Sample 0096\n") && rows.contains("… and 3 more"), "{rows}");
    let json = env.json(&["changes", "--entity", "demo", "--json"]);
    assert_eq!(json["summary"], serde_json::json!([{ "entity": "demo", "inserted": 0, "updated": 0, "deleted": 5 }]));
    let labels: Vec<&str> =
        json["changes"].as_array().unwrap().iter().filter_map(|change| change["label"].as_str()).collect();
    assert_eq!(
        labels,
        ["Sample 0100", "Sample 0096", "Sample 0097", "Sample 0098", "Sample 0099"],
        "keys in text order"
    );
    assert_eq!(env.json(&["changes", "--entity", "item", "--json"])["total"], 0);
    let first = env.json(&["changes", "1", "--json"]);
    assert_eq!(first["total"], 100);
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

// Unknown pipelines and entities are refused with the list of known ones: not found (1), like
// over SSH, and the error is printed once, with no log line repeating it.
#[test]
fn unknown_names_are_clear_errors() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["run", "nosuch"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown pipeline \"nosuch\"") && stderr.contains("demo"), "{stderr}");
    assert_eq!(stderr.matches("unknown pipeline").count(), 1, "printed once: {stderr}");
    let output = env.run(&["count", "widgets"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown entity \"widgets\"") && stderr.contains("runs"), "{stderr}");
    assert_eq!(stderr.lines().filter(|line| line.contains("unknown entity")).count(), 1, "{stderr}");
    // A near miss gets a suggestion; entity names take `_` or `-`, and the table names run
    // notes use; pipeline names any case and `-` for `_`.
    let near = env.run(&["count", "itmes"]);
    assert!(
        String::from_utf8_lossy(&near.stderr).contains("did you mean \"items\""),
        "{}",
        String::from_utf8_lossy(&near.stderr)
    );
    assert_eq!(env.json(&["count", "tower_rewards", "--json"])["count"], 0);
    assert_eq!(env.json(&["count", "npc_items", "--json"])["count"], 0);
    assert_eq!(env.json(&["count", "demo_records", "--json"])["entity"], "demo_records");
    let near = env.run(&["run", "dmeo"]);
    assert!(
        String::from_utf8_lossy(&near.stderr).contains("did you mean \"demo\""),
        "{}",
        String::from_utf8_lossy(&near.stderr)
    );
    assert_eq!(env.json(&["run", "DEMO", "--json"])["pipeline"], "demo");
    assert_eq!(env.json(&["recent", "3", "demo", "--json"]).as_array().map(Vec::len), Some(1));
    assert_eq!(env.json(&["recent", "3", "--pipeline", "Demo", "--json"]).as_array().map(Vec::len), Some(1));
    // A run that does not exist is not found, not a usage error.
    let output = env.run(&["changes", "--run", "9999"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    // What clap refuses is a usage error, `recent 0` included (it used to answer "no runs yet").
    assert_eq!(env.run(&["count"]).status.code(), Some(2));
    let zero = env.run(&["recent", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&zero.stderr).contains("from 1 to 200"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
}

// Logs written to a file or a pipe carry no colour codes (here stderr is a pipe), and the
// dependencies' own chatter stays below the default level; -q and --log-level are honoured.
#[test]
fn logs_for_people_and_files() {
    let Some(env) = TestEnv::new() else { return };
    let output = env.run(&["run", "demo"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("run succeeded") && !stderr.contains('\u{1b}'), "{stderr}");
    assert!(!stderr.contains("Some("), "values are rendered for people: {stderr}");
    let quiet = env.run(&["-q", "run", "demo"]);
    assert!(quiet.status.success());
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("run succeeded"), "-q hides info lines");
    let chosen = env.run(&["--log-level", "warn", "run", "demo"]);
    assert!(!String::from_utf8_lossy(&chosen.stderr).contains("run succeeded"), "--log-level wins over the env");
    let refused = env.run(&["--log-level", "hayloft=loud", "status"]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
}

// A bad configuration value stops the program with a message naming the key.
#[test]
fn bad_configuration_is_a_clear_error() {
    let Some(env) = TestEnv::new() else { return };
    std::fs::write(env.dir.path().join("hayloft.toml"), "addr = \"not-an-address\"\n").unwrap();
    let output = env.run(&["status"]);
    assert_eq!(output.status.code(), Some(2), "a bad configuration is a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("addr"), "{stderr}");

    std::fs::write(env.dir.path().join("hayloft.toml"), "[pipelines.demo]\nschedule = \"whenever\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&env.run(&["status"]).stderr).into_owned();
    assert!(stderr.contains("invalid schedule \"whenever\"") && stderr.contains("pipelines.demo.schedule"), "{stderr}");
    assert!(stderr.contains("5 cron fields") && stderr.matches("whenever").count() == 1, "said once: {stderr}");

    let output = env.run(&["--config", "missing.toml", "status"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}

// `pipelines` shows each pipeline's schedule and next run; a disabled pipeline has none.
#[test]
fn pipelines_lists_schedules_and_next_runs() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "0 0 * * * *");
    assert!(env.run(&["migrate"]).status.success(), "read-only commands need a database");
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
    assert!(env.run(&["migrate"]).status.success());
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output =
        env.command().args(["pipelines"]).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// Only `serve`, `migrate`, `run` and `import` create a database: a read-only command pointed at
// a file that is not there says so, and leaves no empty database behind that would look like a
// healthy install.
#[test]
fn read_only_commands_create_no_database() {
    let Some(env) = TestEnv::new() else { return };
    let missing = env.dir.path().join("typo.db");
    for command in [&["count", "items"][..], &["status"], &["recent"], &["changes"], &["pipelines"]] {
        let output = env.command().arg("--database-url").arg(&missing).args(command).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains(&format!("no database at {}", missing.display())), "{command:?}: {stderr}");
        assert!(stderr.contains("hayloft serve") && stderr.contains("--database-url"), "{stderr}");
        assert!(!missing.exists(), "{command:?} created {}", missing.display());
    }
    let migrated = env.command().arg("--database-url").arg(&missing).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let counted = env.command().arg("--database-url").arg(&missing).args(["count", "items"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&counted.stdout).trim(), "0");
}

// A PostgreSQL server that refuses the connection: the error says which step failed and keeps
// the operating system's reason.
#[test]
fn a_refused_database_connection_says_why() {
    let Some(env) = TestEnv::new() else { return };
    // A port nothing listens on: taken from the system, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/hayloft");
    let output = env.command().args(["--database-url", &url, "status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: connecting to postgres://"), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, printed once: {stderr}");
}

// Completions for three shells and a manual page come from the same definitions as `--help`,
// without reading any configuration; `--version` names the commit.
#[test]
fn completions_man_page_and_version() {
    let Some(env) = TestEnv::new() else { return };
    // A broken configuration does not stand in the way.
    std::fs::write(env.dir.path().join("hayloft.toml"), "adr = 1\n").unwrap();
    for (shell, marker) in [("bash", "_hayloft()"), ("zsh", "#compdef hayloft"), ("fish", "complete -c hayloft")] {
        let output = env.run(&["completions", shell]);
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{shell}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(script.contains(marker) && script.contains("healthcheck"), "{shell}: {script}");
    }
    let man = env.run(&["man"]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && page.contains(".TH hayloft") && page.contains("healthcheck"), "{page}");
    let version = env.run(&["--version"]);
    let version = String::from_utf8_lossy(&version.stdout);
    let commit = version.split("(commit ").nth(1).and_then(|rest| rest.strip_suffix(")\n")).unwrap_or_default();
    assert!(version.starts_with(&format!("hayloft {} (commit ", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(!commit.is_empty(), "{version}");
}

// `run --no-wait` queues the run for a serving node and exits at once; the server starts it
// within a heartbeat. A second one while the first is queued or running is refused, as any
// overlapping run is.
#[test]
fn run_no_wait_hands_the_run_to_a_serving_node() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["demo"]).env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never");
    // Nothing serves yet: queued all the same, and the answer says who will start it.
    let queued = env.json(&["run", "demo", "--no-wait", "--json"]);
    assert_eq!((queued["status"].as_str(), queued["live_nodes"].as_i64()), (Some("queued"), Some(0)), "{queued}");
    let again = env.run(&["run", "demo", "--no-wait", "--json"]);
    assert_eq!(again.status.code(), Some(1));
    let refused: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(refused["error"].as_str().unwrap_or_default().contains("already running"), "{refused}");
    let server = env.serve();
    let run_id = queued["run_id"].as_i64().unwrap();
    let finished = crate::helpers::eventually(std::time::Duration::from_secs(60), || {
        let runs = env.json(&["recent", "5", "demo", "--json"]);
        runs.as_array()?.iter().find(|run| run["run_id"] == run_id && run["status"] == "succeeded").cloned()
    });
    let finished = finished.unwrap_or_else(|| panic!("run {run_id} never ran: {}", server.logs()));
    assert_eq!((finished["trigger"].as_str(), finished["inserted"].as_i64()), (Some("manual"), Some(100)));
    let usage = env.run(&["run", "all", "--no-wait"]);
    assert_eq!(usage.status.code(), Some(2), "{}", String::from_utf8_lossy(&usage.stderr));
    drop(server);
}

// `validate` checks a configuration without starting anything (no database is created); `config`
// prints every setting with where it came from, secrets masked.
#[test]
fn validate_and_config_explain_the_configuration() {
    let Some(env) = TestEnv::new() else { return };
    let file = env.dir.path().join("hayloft.toml");
    std::fs::write(&file, "pool_size = 4\n[pipelines.demo]\nschedule = \"@every 1m\"\n").unwrap();
    let valid = env.command().args(["validate"]).current_dir(env.dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&valid.stdout);
    assert!(valid.status.success() && stdout.starts_with("configuration is valid (hayloft.toml)"), "{stdout}");
    if !env.database_url.starts_with("postgres") {
        assert!(!std::path::Path::new(&env.database_url).exists(), "validate created the database");
    }

    let env = env.env("HAYLOFT_ADMIN_TOKEN", "hunter2");
    let shown = env.command().args(["config"]).current_dir(env.dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let line = |key: &str| {
        text.lines().find(|line| line.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("{key}: {text}"))
    };
    assert!(line("pool_size").contains("= 4") && line("pool_size").ends_with("# hayloft.toml"), "{text}");
    assert!(line("pipelines.demo.schedule").contains("\"@every 1m\""), "{text}");
    assert!(
        line("admin_token").contains("\"***\"") && line("admin_token").ends_with("# HAYLOFT_ADMIN_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(line("addr").ends_with("# default"), "{text}");

    std::fs::write(&file, "[pipelines.demo]\nschedule = \"whenever\"\n").unwrap();
    let invalid = env.command().args(["validate"]).current_dir(env.dir.path()).output().unwrap();
    assert_eq!(invalid.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("demo") && stderr.contains("whenever"), "{stderr}");
}

// Ctrl-C on `hayloft run` cancels the run at once: marked failed (`cancelled`) in the ledger,
// not left `running` for another process to notice, and the command exits 130.
#[test]
fn ctrl_c_cancels_a_run_at_once() {
    let Some(env) = TestEnv::new() else { return };
    let env = env.env("HAYLOFT_PIPELINES__DEMO__DELAY", "60s");
    // The database first, so the polls below never look before the run has created it.
    assert!(env.run(&["migrate"]).status.success());
    let mut child = env
        .command()
        .args(["run", "demo", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = crate::helpers::eventually(std::time::Duration::from_secs(60), || {
        let runs = env.json(&["recent", "1", "demo", "--json"]);
        runs.as_array()?.iter().find(|run| run["status"] == "running").cloned()
    })
    .expect("the run starts");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let waited = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(waited.elapsed() < std::time::Duration::from_secs(30), "it did not wait for the 60 s extract");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["runs"][0].as_i64()),
        (Some("cancelled"), running["run_id"].as_i64())
    );
    let run = &env.json(&["recent", "1", "demo", "--json"])[0];
    assert_eq!(run["status"], "failed", "{run}");
    assert!(run["error"].as_str().unwrap_or_default().starts_with("cancelled"), "{run}");
    assert_eq!(env.json(&["count", "demo", "--json"])["count"], 0, "nothing written");
}

// `[pipelines.demo] copies = N` adds `demo_1` … `demo_N`: each runs on its own (its own runs
// and change feed, the demo's settings), is listed by `pipelines` with a schedule hashed on
// its own name, and is known by name; `copies` on another pipeline, or too many, is refused.
#[test]
fn demo_copies_are_pipelines_of_their_own() {
    let Some(env) = TestEnv::new() else { return };
    let env = env
        .env("HAYLOFT_PIPELINES__DEMO__COPIES", "2")
        .env("HAYLOFT_PIPELINES__DEMO__ROWS", "5")
        .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "H * * * * *");
    let copy = env.json(&["run", "Demo-2", "--json"]);
    assert_eq!((copy["pipeline"].as_str(), copy["status"].as_str()), (Some("demo_2"), Some("succeeded")), "{copy}");
    assert_eq!(copy["inserted"], 5, "the demo's settings: {copy}");
    let pipelines = env.json(&["pipelines", "--json"]);
    let listed: Vec<&serde_json::Value> = pipelines
        .as_array()
        .unwrap()
        .iter()
        .filter(|pipeline| pipeline["name"].as_str().unwrap().starts_with("demo"))
        .collect();
    let names: Vec<&str> = listed.iter().map(|pipeline| pipeline["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "demo_1", "demo_2"]);
    let resolved: std::collections::BTreeSet<&str> =
        listed.iter().map(|pipeline| pipeline["resolved_schedule"].as_str().unwrap()).collect();
    assert_eq!(resolved.len(), 3, "each copy hashes its own second: {listed:?}");
    assert_eq!(listed[2]["last_run"]["run_id"], copy["run_id"]);
    assert!(listed[0]["last_run"].is_null() && listed[1]["last_run"].is_null(), "{listed:?}");
    assert_eq!(env.json(&["recent", "5", "demo_2", "--json"]).as_array().map(Vec::len), Some(1));
    // Past the configured copies there is no such pipeline.
    let output = env.run(&["run", "demo_3"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));

    let wrong = env.sibling().env("HAYLOFT_PIPELINES__ITEMS__COPIES", "1");
    let output = wrong.run(&["validate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pipelines.items.copies: only the demo pipeline can be copied"), "{stderr}");
    let many = env.sibling().env("HAYLOFT_PIPELINES__DEMO__COPIES", "1000");
    let stderr = String::from_utf8_lossy(&many.run(&["validate"]).stderr).into_owned();
    assert!(stderr.contains("more than the 100 copies allowed"), "{stderr}");
}
