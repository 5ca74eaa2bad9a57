//! The container files, read as the engine would read them. These machines have no container
//! engine, so nothing here builds or starts an image: the checks are on what the files say.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use yaml_rust2::{Yaml, YamlLoader};

fn project_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn compose() -> Yaml {
    let mut documents = YamlLoader::load_from_str(&project_file("docker-compose.yml")).expect("valid YAML");
    assert_eq!(documents.len(), 1, "one document");
    documents.remove(0)
}

// Nothing is published beyond this machine unless the operator opens it: every published port
// is bound to 127.0.0.1.
#[test]
fn compose_publishes_ports_on_localhost_only() {
    let compose = compose();
    let services = compose["services"].as_hash().expect("services");
    let mut published = 0;
    for (name, service) in services {
        for port in service["ports"].as_vec().map(Vec::as_slice).unwrap_or_default() {
            let port = port.as_str().unwrap_or_else(|| panic!("{name:?}: quote ports as strings: {port:?}"));
            assert!(port.starts_with("127.0.0.1:"), "{name:?} publishes {port} on every interface");
            published += 1;
        }
    }
    assert_eq!(published, 2, "HTTP and SSH");
}

// The engine waits longer than the drain takes: SIGTERM, `shutdown_grace` for running runs,
// then the hand-over. Its default (10 s) would SIGKILL mid-drain.
#[test]
fn compose_waits_for_the_drain() {
    let compose = compose();
    let hayloft = &compose["services"]["hayloft"];
    let grace = hayloft["stop_grace_period"].as_str().expect("stop_grace_period is set");
    let grace = humantime::parse_duration(grace).expect("a duration");
    let drain = hayloft::config::Config::default().shutdown_grace;
    assert!(grace >= drain + Duration::from_secs(10), "stop_grace_period {grace:?} leaves no room after {drain:?}");
    assert_eq!(hayloft["healthcheck"]["test"][1].as_str(), Some("hayloft"));
    assert_eq!(hayloft["healthcheck"]["test"][2].as_str(), Some("healthcheck"));
}

// Secrets come from the environment (an `.env` file), never from the compose file itself.
#[test]
fn compose_holds_no_secrets() {
    let compose = compose();
    let environment = compose["services"]["hayloft"]["environment"].as_hash().expect("environment");
    let token = environment.get(&Yaml::String("HAYLOFT_ADMIN_TOKEN".into())).and_then(Yaml::as_str);
    assert_eq!(token, Some("${HAYLOFT_ADMIN_TOKEN:-}"), "the admin token is passed through, not written down");
    let password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].as_str();
    assert!(password.is_some_and(|value| value.starts_with("${POSTGRES_PASSWORD")), "{password:?}");
}

// The build context leaves out build output, local databases and the SSH files a local run
// creates (the host key is a secret).
#[test]
fn the_build_context_leaves_out_secrets_and_build_output() {
    let ignored: BTreeSet<String> = project_file(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let ssh = hayloft::front_doors::ssh::SshSettings::default();
    for needed in [
        "target/".to_owned(),
        "**/*.db".to_owned(),
        ".env".to_owned(),
        ssh.host_key.display().to_string(),
        ssh.authorized_keys.display().to_string(),
    ] {
        assert!(ignored.contains(&needed), ".dockerignore lacks {needed}: {ignored:?}");
    }
}

// The image builds its dependencies in a layer of their own, from stand-ins for every target the
// manifest names (the stand-ins are listed by a `sed` over Cargo.toml: it must find every bench),
// and ships the stripped dist profile.
#[test]
fn the_image_caches_dependencies_and_ships_a_stripped_binary() {
    let dockerfile = project_file("Dockerfile");
    let manifests = dockerfile.find("COPY Cargo.toml Cargo.lock").expect("the manifests are copied first");
    let everything = dockerfile.find("COPY . .").expect("then the sources");
    assert!(manifests < everything);
    assert!(dockerfile[manifests..everything].contains("cargo build --profile dist"), "deps built before the sources");
    let manifest = project_file("Cargo.toml");
    let benches: BTreeSet<String> = manifest
        .split("[[bench]]")
        .skip(1)
        .filter_map(|block| block.lines().find_map(|line| line.strip_prefix("name = ")))
        .map(|name| name.trim_matches('"').to_owned())
        .collect();
    let script = dockerfile
        .lines()
        .find_map(|line| line.split_once("for bench in $(").and_then(|(_, rest)| rest.split_once("); do")))
        .map(|(script, _)| script)
        .expect("the bench list command");
    let listed = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("sh runs");
    let listed: BTreeSet<String> =
        String::from_utf8_lossy(&listed.stdout).split_whitespace().map(str::to_owned).collect();
    assert_eq!(listed, benches, "the Dockerfile's stand-ins miss a bench");
    let dist = &manifest[manifest.find("[profile.dist]").expect("a dist profile")..];
    let dist = &dist[..dist[1..].find("\n[").map_or(dist.len(), |end| end + 1)];
    assert!(dist.contains("strip = true"), "{dist}");
    assert!(!dist.contains("panic = \"abort\""), "supervision needs unwinding");
}
