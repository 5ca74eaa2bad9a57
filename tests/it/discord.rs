//! The Discord bot without Discord: the registration payload against the application-command
//! JSON shape, and every slash-command handler through the command core.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestEnv;

/// Discord's rules for chat-input command and option names.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn valid_description(text: &str) -> bool {
    (1..=100).contains(&text.chars().count())
}

// Names, options, descriptions and permissions, as Discord's application-command API wants them.
#[test]
fn registration_payload_has_the_application_command_shape() {
    let payload = hayloft::front_doors::discord::registration_payload();
    let commands = payload.as_array().expect("a list of commands");
    let names: Vec<&str> = commands.iter().map(|command| command["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["count", "status", "recent", "changes", "run"]);
    for command in commands {
        let name = command["name"].as_str().unwrap();
        assert!(valid_name(name), "{name}");
        assert!(valid_description(command["description"].as_str().unwrap()), "{command}");
        // Chat-input commands: no type means 1 (CHAT_INPUT); anything else would be a menu.
        assert!(command.get("type").is_none_or(|kind| kind == 1), "{command}");
        // Visible to everyone; `/run` is refused at run time to members without a run role.
        assert!(command.get("default_member_permissions").is_none_or(Value::is_null), "{command}");
        let options = command["options"].as_array().unwrap();
        assert!(options.len() <= 25);
        let mut seen_optional = false;
        for option in options {
            assert!(valid_name(option["name"].as_str().unwrap()), "{option}");
            assert!(valid_description(option["description"].as_str().unwrap()), "{option}");
            // 3 = STRING, 4 = INTEGER.
            assert!(matches!(option["type"].as_u64(), Some(3 | 4)), "{option}");
            // Required options come first.
            let required = option["required"].as_bool().unwrap();
            assert!(!(required && seen_optional), "{command}");
            seen_optional |= !required;
        }
    }
    let by_name = |wanted: &str| commands.iter().find(|command| command["name"] == wanted).unwrap().clone();
    let count = by_name("count");
    assert_eq!(
        (count["options"][0]["name"].as_str(), count["options"][0]["required"].as_bool()),
        (Some("entity"), Some(true))
    );
    let recent = by_name("recent");
    assert_eq!(
        (recent["options"][0]["min_value"].as_f64(), recent["options"][0]["max_value"].as_f64()),
        (Some(1.0), Some(50.0))
    );
    let run = by_name("run");
    assert_eq!(run["contexts"], serde_json::json!([0]), "`/run` only in a guild, where roles exist");
    assert_eq!(run["options"][0]["autocomplete"], true);
    assert!(by_name("status")["options"].as_array().unwrap().is_empty());
}

// Each handler goes through the command core: answers, errors, and `/run` refused to members
// without a configured role.
#[test]
fn slash_commands_answer_through_the_command_core() {
    use hayloft::app::{Hayloft, Mode};
    use hayloft::config::{Config, Overrides, PipelineConfig};
    use hayloft::front_doors::discord::{handle, Data, DiscordSettings};
    use hayloft_actors::command::Command;

    let Some(env) = TestEnv::new() else { return };
    let overrides = Overrides { database_url: Some(env.database_url.clone()), ..Overrides::default() };
    let mut config = Config::load(None, &overrides).unwrap();
    config
        .pipelines
        .insert("demo".into(), PipelineConfig { enabled: Some(false), rows: Some(20), ..PipelineConfig::default() });
    config.database().unwrap().migrate().unwrap();
    let settings = DiscordSettings { run_roles: vec![700], run_users: vec![42], ..DiscordSettings::default() };

    actix::System::new().block_on(async move {
        let hayloft = Hayloft::start(config, Mode::Pipelines).await.unwrap();
        let data = Data { core: hayloft.commands.clone(), settings: std::sync::Arc::new(settings) };
        let ask = |user: u64, roles: Vec<u64>, command: Command| {
            let data = &data;
            async move { serde_json::to_value(handle(data, user, "someone", &roles, command).await).unwrap() }
        };
        let run = || Command::Run { pipeline: "demo".into(), wait: false, allow_mass_delete: false };

        let refused = ask(1, vec![800], run()).await;
        assert_eq!(refused["title"], "Not allowed", "{refused}");
        assert_eq!(refused["color"], 0xcf222e);
        assert!(refused["description"].as_str().unwrap().contains("only admins may start runs"), "{refused}");

        let started = ask(1, vec![700], run()).await;
        assert_eq!(started["title"], "demo: run #1 started", "{started}");
        let mut finished = false;
        // Up to 30 s: polled, not slept through.
        for _ in 0..600 {
            let recent = ask(5, vec![], Command::Recent { limit: 5, pipeline: None }).await;
            if recent["description"].as_str().unwrap_or_default().contains("#1 demo succeeded +20") {
                finished = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(finished, "the run finished");
        assert_eq!(ask(42, vec![], run()).await["title"], "demo: run #2 started", "a run user needs no role");

        assert_eq!(ask(5, vec![], Command::Count { entity: "demo".into() }).await["title"], "20 demo");
        let unknown = ask(5, vec![], Command::Count { entity: "widgets".into() }).await;
        assert_eq!(unknown["title"], "Could not do that");
        assert!(unknown["description"].as_str().unwrap().starts_with("unknown entity"), "{unknown}");

        let status = ask(5, vec![], Command::Status).await;
        assert_eq!(status["title"], "Pipelines");
        let fields: Vec<&str> =
            status["fields"].as_array().unwrap().iter().map(|field| field["name"].as_str().unwrap()).collect();
        assert_eq!(fields, hayloft::pipelines::KNOWN);
        assert!(status["fields"].as_array().unwrap().iter().all(|field| field["inline"] == true), "compact on a phone");

        let changes = ask(5, vec![], Command::Changes { run: Some(1), view: Default::default() }).await;
        assert_eq!(changes["title"], "Run #1: 20 changes", "{changes}");
        assert_eq!(changes["description"].as_str().unwrap().lines().count(), 20, "one line per change");
        let missing = ask(5, vec![], Command::Changes { run: Some(999), view: Default::default() }).await;
        assert!(missing["description"].as_str().unwrap().contains("there is no run #999"), "{missing}");
        hayloft.shutdown().await;
    });
}
