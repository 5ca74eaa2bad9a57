//! The README's examples, run against a fresh server on the bundled sample data: what the README
//! shows must be what a new operator gets.

use serde_json::{json, Value};

use crate::helpers::TestEnv;

const README: &str = include_str!("../../README.md");

/// The bodies of the README's fenced blocks of `language`.
fn blocks(language: &str) -> Vec<&'static str> {
    let fence = format!("```{language}\n");
    README.split(fence.as_str()).skip(1).filter_map(|rest| rest.split("```").next()).collect()
}

/// A word a person replaces (`FILE...`, `[N]`, `DIR`) or shell syntax: the line is a pattern,
/// not a command to run as written.
fn is_pattern(words: &[&str]) -> bool {
    words.iter().any(|word| {
        word.contains('[')
            || word.contains('>')
            || word.ends_with("...")
            || (word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase()))
    })
}

/// Checks an answer is not empty where the example shows data: no errors, every root field
/// present, every connection with rows, no lookup or relation answering null.
fn assert_has_data(example: &str, answer: &Value) {
    assert!(answer.get("errors").is_none(), "{example}\n{answer}");
    let data = answer["data"].as_object().unwrap_or_else(|| panic!("no data: {answer}"));
    for (field, value) in data {
        if let Some(total) = value.get("totalCount") {
            assert!(total.as_i64().unwrap_or(0) > 0, "{field} has no rows on the sample data: {value}");
        }
        if let Some(nodes) = value.get("nodes") {
            assert!(nodes.as_array().is_some_and(|nodes| !nodes.is_empty()), "{field} has no rows: {value}");
        } else {
            let object = value.as_object().unwrap_or_else(|| panic!("{field} is null on the sample data"));
            for (inner, inner_value) in object {
                assert!(!inner_value.is_null(), "{field}.{inner} is null on the sample data: {value}");
            }
        }
    }
}

// The commands of "Using it" that run as written do, the numbers quoted for the sample data are
// the ones a run gives, and every GraphQL example answers with data.
#[test]
fn the_readme_examples_are_true_on_the_sample_data() {
    let Some(env) = TestEnv::new() else { return };
    let using = blocks("sh").into_iter().find(|block| block.contains("hayloft run items --json")).expect("Using it");

    // `hayloft run items --json     # … {"…","inserted":2857,...}`
    let line = using.lines().find(|line| line.starts_with("hayloft run items --json")).unwrap();
    let quoted: i64 =
        line.split("\"inserted\":").nth(1).and_then(|rest| rest.split(',').next()).unwrap().parse().unwrap();
    let run = env.json(&["run", "items", "--json"]);
    assert_eq!((run["status"].as_str(), run["inserted"].as_i64()), (Some("succeeded"), Some(quoted)), "{run}");

    // The one-shot commands first: a server starting would run its first catch-up runs beside them.
    let mut ran = 0;
    let mut healthcheck = false;
    for line in using.lines() {
        let command = line.split('#').next().unwrap_or_default().trim();
        let words: Vec<&str> = command.split_whitespace().collect();
        // `serve` (and the bare default) keep running; the one started above stands for them.
        // `replay` serves too. `--no-wait` queues a run this test's server would then start.
        let Some((_, args)) = words.split_first() else { continue };
        if args.is_empty() || is_pattern(args) || matches!(args[0], "serve" | "replay") || args.contains(&"--no-wait") {
            continue;
        }
        if args == ["healthcheck"] {
            healthcheck = true;
            continue;
        }
        let output = env.run(args);
        assert!(output.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&output.stderr));
        ran += 1;
    }
    let server = env.serve();
    if healthcheck {
        let addr = server.base_url.trim_start_matches("http://").to_owned();
        assert!(env.run(&["healthcheck", "--addr", &addr]).status.success());
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} of the README's commands ran");

    let client = reqwest::blocking::Client::new();
    let examples = blocks("graphql");
    assert!(examples.len() >= 2, "the GraphQL examples");
    let mut talk = None;
    for example in examples {
        let answer: Value = client
            .post(format!("{}/graphql", server.base_url))
            .json(&json!({ "query": example }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_has_data(example, &answer);
        if example.contains("requiredFor") {
            talk = Some(answer);
        }
    }
    // The talk's example: what quests ask for each item, answered with some quests.
    let answer = talk.expect("the talk's example is in the README");
    let asked = answer["data"]["items"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["requiredFor"].as_array().is_some_and(|quests| !quests.is_empty()))
        .count();
    assert!(asked > 0, "no sample item is asked for by a quest: {answer}");
}
