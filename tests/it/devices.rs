//! Devices: the serial line protocol over a real pseudo-terminal pair.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, PtyMaster};

use crate::helpers::{eventually, eventually_async, TestEnv};

/// The device end of a pseudo-terminal whose other end is reachable at `link`.
struct Device {
    master: PtyMaster,
    pending: String,
}

impl Device {
    /// A fresh pair; `link` (a symlink, like `/dev/serial/by-id/…`) points at its other end.
    fn plug(link: &Path) -> Self {
        // Close-on-exec from the start: a server spawned by a test running alongside must not
        // inherit this end, or closing it here would not unplug anything.
        let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).expect("a pseudo-terminal");
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let path = ptsname_r(&master).unwrap();
        fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&path, link).unwrap();
        Self { master, pending: String::new() }
    }

    /// Writes a line; fails (quietly: the caller waits for an answer) while nobody has the
    /// other end open.
    fn send(&mut self, line: &str) {
        let _ = self.master.write_all(format!("{line}\n").as_bytes());
    }

    /// The next line from Hayloft, waiting up to `limit`.
    fn line(&mut self, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(end) = self.pending.find('\n') {
                let line = self.pending[..end].trim_end_matches('\r').to_owned();
                self.pending.drain(..=end);
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut buffer = [0u8; 512];
            match self.master.read(&mut buffer) {
                Ok(read) if read > 0 => self.pending.push_str(&String::from_utf8_lossy(&buffer[..read])),
                // Nothing yet, or nobody has the other end open yet (or any more).
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Reads lines until one satisfies `wanted` (other lines, like events, are skipped).
    fn expect(&mut self, wanted: impl Fn(&str) -> bool, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(line) = self.line(deadline.saturating_duration_since(Instant::now())) {
            if wanted(&line) {
                return line;
            }
            seen.push(line);
        }
        panic!("no expected line; saw {seen:?}");
    }
}

// Every command and error, the events pushed after a run, and recovery after the port goes away.
#[test]
fn serial_protocol_over_a_pty() {
    let Some(env) = TestEnv::new() else { return };
    let link = env.dir.path().join("hayloft-serial");
    let mut device = Device::plug(&link);
    let env = env
        .only(&["demo"])
        .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never")
        .env("HAYLOFT_PIPELINES__DEMO__ROWS", "20")
        .env("HAYLOFT_SERIAL__ENABLED", "true")
        .env("HAYLOFT_SERIAL__PORT", link.to_str().unwrap());
    let server = env.serve();
    let wait = Duration::from_secs(30);

    // The port may open a moment after the server answers HTTP. Until it does, the pty is in
    // its default cooked mode and echoes what is written: skip those lines, then drain them.
    let first = eventually(Duration::from_secs(10), || {
        device.send("COUNT demo");
        device.line(Duration::from_millis(500)).filter(|line| line.starts_with("OK"))
    });
    assert_eq!(first.as_deref(), Some("OK 0"), "{}", server.logs());
    while device.line(Duration::from_millis(300)).is_some() {}

    device.send("STATUS");
    let status = device.expect(|line| line.starts_with("OK "), wait);
    assert!(status.starts_with("OK items=never") && status.contains(" demo=never"), "{status}");

    device.send("RUN demo");
    let started = device.expect(|line| line.starts_with("OK run "), wait);
    assert!(started.ends_with(" started"), "{started}");
    assert_eq!(device.expect(|line| line.starts_with("EVENT "), wait), "EVENT demo succeeded +20 ~0 -0");
    device.send("count DEMO");
    assert_eq!(device.expect(|line| line.starts_with("OK"), wait), "OK 20");

    device.send("BLINK");
    assert!(device.expect(|_| true, wait).starts_with("ERR unknown command `BLINK`"));
    device.send("TREE");
    assert!(device.expect(|_| true, wait).starts_with("ERR `tree` is not part of the serial protocol"));
    device.send("COUNT widgets");
    assert!(device.expect(|_| true, wait).starts_with("ERR unknown entity"));
    device.send(&"X".repeat(500));
    assert_eq!(device.expect(|_| true, wait), "ERR line too long (at most 128 bytes)");
    device.send("COUNT demo");
    assert_eq!(device.expect(|_| true, wait), "OK 20", "the line after a long one is read normally");

    // Unplugged: the port goes away; plugged back (a new pty behind the same path).
    drop(device);
    let lost = eventually(wait, || server.logs().contains("serial port lost").then_some(()));
    assert!(lost.is_some(), "{}", server.logs());
    let mut device = Device::plug(&link);
    let back = eventually(Duration::from_secs(40), || {
        device.send("COUNT demo");
        device.line(Duration::from_millis(500)).filter(|line| line == "OK 20")
    });
    assert!(back.is_some(), "the port was not reopened:\n{}", server.logs());
    assert_eq!(server.get("/healthz").status(), 200, "the rest of Hayloft carried on");
}

// On the simulated deck: a key press starts the mapped run; the key goes running → succeeded,
// and to failed on an injected failure; a count key follows the table; an unplugged deck is
// reconnected with backoff and every key is drawn again.
#[test]
fn stream_deck_keys_follow_runs_and_survive_unplugging() {
    use actix::Actor as _;
    use hayloft::app::{Hayloft, Mode};
    use hayloft::config::{Config, Overrides, PipelineConfig};
    use hayloft::front_doors::devices::streamdeck::{KeyBinding, KeyState, SimulatedDeck};
    use hayloft_actors::supervisor::{GetTree, Supervisor};

    let Some(env) = TestEnv::new() else { return };
    let overrides = Overrides { database_url: Some(env.database_url.clone()), ..Overrides::default() };
    let mut config = Config::load(None, &overrides).unwrap();
    for name in hayloft::pipelines::KNOWN {
        config.pipelines.insert(name.to_string(), PipelineConfig { enabled: Some(false), ..PipelineConfig::default() });
    }
    let panic_file = env.dir.path().join("panic");
    config.pipelines.insert(
        "demo".into(),
        PipelineConfig {
            enabled: Some(false),
            rows: Some(20),
            panic_when: Some(panic_file.clone()),
            ..PipelineConfig::default()
        },
    );
    config.database().unwrap().migrate().unwrap();
    let bindings = vec![
        KeyBinding { key: 0, run: Some("demo".into()), count: None },
        KeyBinding { key: 1, run: None, count: Some("demo".into()) },
    ];
    let deck = SimulatedDeck::new(6);
    let wait = Duration::from_secs(30);

    actix::System::new().block_on(async move {
        let hayloft = Hayloft::start(config, Mode::Pipelines).await.unwrap();
        let spec = hayloft::front_doors::devices::stream_deck(
            bindings,
            std::sync::Arc::new(deck.clone()),
            hayloft.commands.clone(),
            hayloft.events.clone(),
        );
        let root = Supervisor::new("test").child(spec).start();
        let face = |key: u8| deck.face(key).map(|face| (face.state, face.value));

        let drawn = eventually_async(wait, || (face(0) == Some((KeyState::Idle, None))).then_some(())).await;
        assert!(drawn.is_some(), "key 0 starts idle: {:?}", face(0));
        assert!(eventually_async(wait, || (face(1) == Some((KeyState::Count, Some(0)))).then_some(())).await.is_some());

        deck.press(0);
        let done = eventually_async(wait, || (face(0) == Some((KeyState::Succeeded, None))).then_some(())).await;
        assert!(done.is_some(), "the run finished: {:?}", deck.states(0));
        assert_eq!(deck.states(0), [KeyState::Idle, KeyState::Running, KeyState::Succeeded]);
        assert!(eventually_async(wait, || (face(1) == Some((KeyState::Count, Some(20)))).then_some(()))
            .await
            .is_some());

        std::fs::write(&panic_file, b"").unwrap();
        deck.press(0);
        let failed = eventually_async(wait, || (face(0) == Some((KeyState::Failed, None))).then_some(())).await;
        assert!(failed.is_some(), "an injected failure shows: {:?}", deck.states(0));
        std::fs::remove_file(&panic_file).unwrap();

        // Unplugged for a while (reconnection attempts fail and back off), then plugged back.
        deck.unplug();
        let retried = eventually_async(wait, || (deck.refused_connections() >= 2).then_some(())).await;
        assert!(retried.is_some(), "reconnection attempts while unplugged");
        assert_eq!(deck.connections(), 1);
        deck.plug();
        let back = eventually_async(wait, || {
            (deck.connections() >= 2 && face(0).is_some() && face(1).is_some()).then_some(())
        })
        .await;
        assert!(back.is_some(), "the deck came back");
        assert_eq!(face(0), Some((KeyState::Failed, None)), "keys are drawn again as they were");
        assert_eq!(face(1), Some((KeyState::Count, Some(20))));
        let tree = root.send(GetTree).await.unwrap();
        let node = tree.children.iter().find(|child| child.name == "streamdeck").unwrap();
        assert!(node.restarts >= 1, "{node:?}");

        // Still live after the reconnection.
        deck.press(0);
        let again = eventually_async(wait, || {
            deck.states(0).ends_with(&[KeyState::Failed, KeyState::Running, KeyState::Succeeded]).then_some(())
        })
        .await;
        assert!(again.is_some(), "{:?}", deck.states(0));
        hayloft.shutdown().await;
    });
}
