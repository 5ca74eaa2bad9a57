//! The SSH front door, driven by the real OpenSSH client (`ssh`, `ssh-keygen`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{eventually, skip, Server, TestEnv};

/// A server with two authorized keys (`admin@test` is an admin, `guest@test` is not) and a
/// third key nobody authorized.
struct SshFixture {
    env: TestEnv,
    keys: PathBuf,
}

fn have_openssh() -> bool {
    let found = Command::new("ssh").arg("-V").output().is_ok_and(|output| output.status.success())
        && Command::new("ssh-keygen").arg("--help").output().is_ok();
    if !found {
        skip("the OpenSSH client (ssh, ssh-keygen) is not installed");
    }
    found
}

fn keygen(path: &Path, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

impl SshFixture {
    fn new(extra: &[(&str, &str)]) -> Option<Self> {
        if !have_openssh() {
            return None;
        }
        let keys = tempfile::tempdir().expect("a temp dir").keep();
        keygen(&keys.join("admin"), "admin@test");
        keygen(&keys.join("guest"), "guest@test");
        keygen(&keys.join("stranger"), "stranger@test");
        let mut authorized = String::from("# who may log in\n");
        for name in ["admin", "guest"] {
            authorized.push_str(&std::fs::read_to_string(keys.join(format!("{name}.pub"))).expect("a public key"));
        }
        std::fs::write(keys.join("authorized_keys"), authorized).expect("write authorized_keys");
        let mut env = TestEnv::new()?
            .only(&["demo"])
            .env("HAYLOFT_PIPELINES__DEMO__ROWS", "20")
            // Runs only when a test asks, so counts are known.
            .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "never")
            .env("HAYLOFT_SSH__AUTHORIZED_KEYS", keys.join("authorized_keys").to_str().expect("utf-8"))
            .env("HAYLOFT_SSH__ADMINS", "[\"admin@test\"]");
        for (key, value) in extra {
            env = env.env(key, value);
        }
        Some(Self { env, keys })
    }

    /// `ssh` as `key`, with no host checks and no user configuration.
    fn ssh(&self, server: &Server, key: &str) -> Command {
        let addr = server.ssh_addr.expect("the server listens for SSH");
        let mut command = Command::new("ssh");
        command
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args([
                "-o",
                "LogLevel=ERROR",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg("-i")
            .arg(self.keys.join(key))
            .args(["-p", &addr.port().to_string(), &format!("hayloft@{}", addr.ip())]);
        command
    }

    /// An `ssh` session kept open (`-tt`: with a terminal, `-T`: without), with its stdin and
    /// everything it printed so far.
    fn session(&self, server: &Server, key: &str, args: &[&str]) -> Session {
        let mut child = self
            .ssh(server, key)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh starts");
        let seen = collect(&mut child);
        let stdin = child.stdin.take().expect("piped stdin");
        Session { child, stdin, seen }
    }

    fn exec(&self, server: &Server, key: &str, command: &str) -> Output {
        self.ssh(server, key).arg(command).stdin(Stdio::null()).output().expect("ssh runs")
    }
}

struct Session {
    child: Child,
    stdin: std::process::ChildStdin,
    seen: Arc<Mutex<String>>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Collects a child's stdout in the background.
fn collect(child: &mut Child) -> Arc<Mutex<String>> {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    seen
}

fn wait_for(seen: &Arc<Mutex<String>>, needle: &str, limit: Duration) -> bool {
    eventually(limit, || seen.lock().unwrap().contains(needle).then_some(())).is_some()
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

// Every command over `ssh host <command>`: answers on stdout, errors on stderr with an exit
// status, and `run` for admins only.
#[test]
fn exec_commands_answer_like_the_cli() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();

    let count = fixture.exec(&server, "guest", "count demo");
    assert!(count.status.success(), "{}\n{}", text(&count.stderr), server.logs());
    assert_eq!(text(&count.stdout), "0\n");

    let refused = fixture.exec(&server, "guest", "run demo");
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("`run` is not allowed"), "{}", text(&refused.stderr));

    let run = fixture.exec(&server, "admin", "run demo");
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stdout).contains("demo succeeded +20 ~0 -0"), "{}", text(&run.stdout));
    assert_eq!(text(&fixture.exec(&server, "guest", "COUNT demo").stdout), "20\n");

    let status = text(&fixture.exec(&server, "guest", "status").stdout);
    for pipeline in hayloft::pipelines::KNOWN {
        assert!(status.contains(pipeline), "{pipeline} missing from:\n{status}");
    }
    let recent = text(&fixture.exec(&server, "guest", "recent 5").stdout);
    assert!(recent.contains("demo succeeded +20"), "{recent}");
    let changes = text(&fixture.exec(&server, "guest", "changes").stdout);
    assert!(changes.contains(": 20 changes") && changes.contains("demo: +20 ~0 −0"), "{changes}");
    let rows = text(&fixture.exec(&server, "guest", "changes --rows -n 2").stdout);
    assert!(rows.contains("insert demo 1 Sample 0001") && rows.contains("… and 18 more"), "{rows}");
    let tree = text(&fixture.exec(&server, "guest", "tree").stdout);
    assert!(tree.starts_with("root [running]") && tree.contains("ssh [running]"), "{tree}");
    let logs = text(&fixture.exec(&server, "guest", "logs --level info").stdout);
    assert!(logs.contains("run succeeded"), "{logs}");
    assert!(text(&fixture.exec(&server, "guest", "help").stdout).contains("logs [-f]"));

    let unknown = fixture.exec(&server, "guest", "stauts");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("did you mean `status`"), "{}", text(&unknown.stderr));
    let missing = fixture.exec(&server, "guest", "count widgets");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("unknown entity"), "{}", text(&missing.stderr));
    let long = fixture.exec(&server, "guest", &format!("count {}", "x".repeat(2000)));
    assert_eq!(long.status.code(), Some(2));
    assert!(text(&long.stderr).contains("longer than"), "{}", text(&long.stderr));
}

// `show` answers one run in full and `history` the change feed newest first, narrowed by entity
// and count; a run that does not exist is a failure that says how to find one.
#[test]
fn show_and_history_answer_from_the_ledger() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    let run = fixture.exec(&server, "admin", "run demo");
    assert!(run.status.success(), "{}", text(&run.stderr));
    let recent = text(&fixture.exec(&server, "guest", "recent 1 demo").stdout);
    let run_id: i64 = recent.trim_start_matches('#').split(' ').next().unwrap().parse().unwrap();

    let shown = text(&fixture.exec(&server, "guest", &format!("show #{run_id}")).stdout);
    assert!(shown.starts_with(&format!("#{run_id} demo succeeded +20 ~0 -0")), "{shown}");
    assert!(shown.contains("  finished at "), "{shown}");
    let history = text(&fixture.exec(&server, "guest", "history demo -n 3").stdout);
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(history.lines().all(|line| line.contains(&format!("run #{run_id} insert demo"))), "{history}");

    let missing = fixture.exec(&server, "guest", "show 999999");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("there is no run #999999"), "{}", text(&missing.stderr));
}

// Password and keyboard-interactive logins are refused, and so are keys nobody authorized; the
// SSH server offers no subsystem (sftp) either.
#[test]
fn only_authorized_keys_get_in() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    let addr = server.ssh_addr.unwrap();
    let password = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no"])
        .args(["-o", "PreferredAuthentications=password,keyboard-interactive"])
        .args(["-p", &addr.port().to_string(), &format!("hayloft@{}", addr.ip()), "status"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(password.status.code(), Some(255));
    assert!(text(&password.stderr).contains("Permission denied (publickey)"), "{}", text(&password.stderr));

    let stranger = fixture.exec(&server, "stranger", "status");
    assert_eq!(stranger.status.code(), Some(255));
    assert!(text(&stranger.stderr).contains("Permission denied"), "{}", text(&stranger.stderr));
    assert!(server.logs().contains("not in authorized_keys"), "{}", server.logs());

    let sftp = fixture.ssh(&server, "guest").arg("-s").arg("sftp").stdin(Stdio::null()).output().unwrap();
    assert!(!sftp.status.success(), "sftp must be refused");

    // The host key was created once, for the owner only, and is reused by the next start.
    let host_key = fixture.env.dir.path().join("hayloft_ssh_host_ed25519_key");
    let first = std::fs::read_to_string(&host_key).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&host_key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    drop(server);
    let again = fixture.env.serve();
    assert!(fixture.exec(&again, "guest", "status").status.success());
    assert_eq!(std::fs::read_to_string(&host_key).unwrap(), first, "the host key is kept");
}

// The interactive prompt: a terminal, line editing, history, and `exit`.
#[test]
fn interactive_prompt_with_history() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    let Session { mut child, mut stdin, seen } = fixture.session(&server, "guest", &["-tt"]);
    assert!(wait_for(&seen, "hayloft> ", Duration::from_secs(10)), "no prompt: {:?}", seen.lock().unwrap());
    // A typo fixed with backspaces.
    stdin.write_all(b"count demx\x7fo\r").unwrap();
    assert!(wait_for(&seen, "\r\n0\r\n", Duration::from_secs(10)), "{:?}", seen.lock().unwrap());
    // Up arrow brings the last line back.
    stdin.write_all(b"stauts\r").unwrap();
    assert!(wait_for(&seen, "did you mean `status`", Duration::from_secs(10)), "{:?}", seen.lock().unwrap());
    stdin.write_all(b"\x1b[A\x1b[A\r").unwrap();
    let twice = || seen.lock().unwrap().matches("\r\n0\r\n").count() >= 2;
    assert!(eventually(Duration::from_secs(10), || twice().then_some(())).is_some(), "{:?}", seen.lock().unwrap());
    stdin.write_all(b"exit\r").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("ssh exits after `exit`");
    assert!(status.success(), "{status:?}");
}

// `logs -f` streams lines logged after it started, until Ctrl-C.
#[test]
fn logs_follow_streams_until_ctrl_c() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    let Session { child: mut follower, mut stdin, seen } = fixture.session(&server, "guest", &["-tt", "logs -f"]);
    // The follower may subscribe after a run's lines: run until one shows up.
    let mut streamed = false;
    for _ in 0..10 {
        let run = fixture.exec(&server, "admin", "run demo");
        assert!(run.status.success(), "{}", text(&run.stderr));
        if wait_for(&seen, "run succeeded", Duration::from_secs(2)) {
            streamed = true;
            break;
        }
    }
    assert!(streamed, "no log line reached `logs -f`: {:?}\n{}", seen.lock().unwrap(), server.logs());
    assert!(seen.lock().unwrap().contains("root/pipelines/demo/runner"), "lines name their actor");
    stdin.write_all(b"\x03").unwrap();
    let status = wait_exit(&mut follower, Duration::from_secs(10)).expect("Ctrl-C ends `logs -f`");
    assert_eq!(status.code(), Some(130));
}

// Past `max_sessions`, a new session is refused with a reason; the open one carries on.
#[test]
fn the_session_limit_refuses_with_a_reason() {
    let Some(fixture) = SshFixture::new(&[("HAYLOFT_SSH__MAX_SESSIONS", "1")]) else { return };
    let server = fixture.env.serve();
    let Session { child: mut holder, mut stdin, seen } = fixture.session(&server, "guest", &["-tt"]);
    assert!(wait_for(&seen, "hayloft> ", Duration::from_secs(10)));
    let refused = fixture.exec(&server, "admin", "status");
    assert_eq!(refused.status.code(), Some(255));
    assert!(text(&refused.stderr).contains("too many sessions"), "{}", text(&refused.stderr));
    // The open session still answers, and once it leaves there is room again.
    stdin.write_all(b"count demo\r").unwrap();
    assert!(wait_for(&seen, "\r\n0\r\n", Duration::from_secs(10)), "{:?}", seen.lock().unwrap());
    stdin.write_all(b"exit\r").unwrap();
    wait_exit(&mut holder, Duration::from_secs(10)).expect("the holder leaves");
    let again = eventually(Duration::from_secs(10), || {
        let output = fixture.exec(&server, "admin", "count demo");
        output.status.success().then_some(output)
    });
    assert!(again.is_some(), "a slot frees up when a session ends");
}

// A session idle past `idle_timeout` is closed; a client that floods one endless line is
// closed too, and neither disturbs another session.
#[test]
fn idle_and_misbehaving_sessions_are_closed() {
    let Some(fixture) = SshFixture::new(&[("HAYLOFT_SSH__IDLE_TIMEOUT", "2s")]) else { return };
    let server = fixture.env.serve();
    let Session { child: mut idle, stdin: _stdin, seen } = fixture.session(&server, "guest", &["-tt"]);
    let status = wait_exit(&mut idle, Duration::from_secs(15)).expect("an idle session is closed");
    assert!(status.success());
    assert!(seen.lock().unwrap().contains("idle for 2s"), "{:?}", seen.lock().unwrap());

    // Without a terminal, a line past the limit is a flood: the session is closed.
    let Session { child: mut flood, mut stdin, .. } = fixture.session(&server, "guest", &["-T"]);
    let _ = stdin.write_all(&vec![b'a'; 64 * 1024]);
    let status = wait_exit(&mut flood, Duration::from_secs(15)).expect("a flooding session is closed");
    assert_eq!(status.code(), Some(2));
    let output = fixture.exec(&server, "guest", "count demo");
    assert!(output.status.success(), "others are unaffected: {}", text(&output.stderr));
}

/// A TCP connection to `to` from the loopback address `source` (Linux answers on all of
/// 127.0.0.0/8), so one test can play many clients.
fn connect_from(source: std::net::Ipv4Addr, to: std::net::SocketAddr) -> std::net::TcpStream {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd as _;
    let std::net::SocketAddr::V4(to) = to else { panic!("the SSH server listens on IPv4") };
    let socket = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("a socket");
    bind(socket.as_raw_fd(), &SockaddrIn::from(std::net::SocketAddrV4::new(source, 0))).expect("bind the source");
    connect(socket.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
    std::net::TcpStream::from(socket)
}

/// What an idle connection saw: the server's banner, and whether the server closed it.
#[derive(Default, Clone, Copy)]
struct IdleOutcome {
    banner: bool,
    closed: bool,
}

/// Reads whatever the server sends on idle connections until each is closed or `limit` passes,
/// waking only when one of them has something to read (`poll`).
fn watch_idle(streams: &mut [std::net::TcpStream], limit: Duration) -> Vec<IdleOutcome> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd as _;
    let mut outcomes = vec![IdleOutcome::default(); streams.len()];
    for stream in streams.iter() {
        stream.set_nonblocking(true).expect("non-blocking");
    }
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && outcomes.iter().any(|outcome| !outcome.closed) {
        let open: Vec<usize> = (0..streams.len()).filter(|&index| !outcomes[index].closed).collect();
        let ready: Vec<usize> = {
            let mut fds: Vec<PollFd> =
                open.iter().map(|&index| PollFd::new(streams[index].as_fd(), PollFlags::POLLIN)).collect();
            let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            poll(&mut fds, PollTimeout::try_from(wait).expect("a short timeout")).expect("poll");
            open.iter().zip(&fds).filter(|(_, fd)| fd.any() == Some(true)).map(|(&index, _)| index).collect()
        };
        for index in ready {
            let mut buffer = [0u8; 512];
            match streams[index].read(&mut buffer) {
                Ok(0) => outcomes[index].closed = true,
                Ok(read) => outcomes[index].banner |= buffer[..read].starts_with(b"SSH-2.0-hayloft"),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => outcomes[index].closed = true,
            }
        }
    }
    outcomes
}

// Connections that never send a byte are capped (per address and in total) and closed once the
// login grace, counted from accept, runs out: with far more of them than the process has
// descriptors, HTTP keeps answering, refusals are logged once per interval, and real logins
// work again as soon as the idle ones are gone.
#[test]
fn idle_connections_before_login_are_capped_and_closed() {
    let Some(fixture) = SshFixture::new(&[
        ("HAYLOFT_SSH__LOGIN_GRACE", "20s"),
        ("HAYLOFT_SSH__MAX_UNAUTHENTICATED", "64"),
        ("HAYLOFT_SSH__MAX_UNAUTHENTICATED_PER_ADDRESS", "10"),
    ]) else {
        return;
    };
    let SshFixture { env, keys } = fixture;
    // 300 idle connections could not all be held open by a process limited to 256 descriptors.
    let fixture = SshFixture { env: env.open_files(256), keys };
    let server = fixture.env.serve();
    let addr = server.ssh_addr.expect("ssh listens");
    let opened = Instant::now();

    // One greedy address opens 20, then 28 more addresses open 10 each.
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(connect_from(std::net::Ipv4Addr::new(127, 0, 0, 10), addr));
    }
    for host in 11..39 {
        for _ in 0..10 {
            streams.push(connect_from(std::net::Ipv4Addr::new(127, 0, 0, host), addr));
        }
    }
    assert_eq!(streams.len(), 300);

    // The flood is held open: HTTP still answers.
    for _ in 0..5 {
        let health = reqwest::blocking::Client::new()
            .get(format!("{}/healthz", server.base_url))
            .timeout(Duration::from_secs(10))
            .send();
        assert!(health.is_ok_and(|response| response.status().is_success()), "/healthz failed\n{}", server.logs());
    }

    let outcomes = watch_idle(&mut streams, Duration::from_secs(90));
    let held_for = opened.elapsed();
    assert!(
        outcomes.iter().all(|outcome| outcome.closed),
        "some idle connections were never closed\n{}",
        server.logs()
    );
    let admitted = outcomes.iter().filter(|outcome| outcome.banner).count();
    let greedy_admitted = outcomes[..20].iter().filter(|outcome| outcome.banner).count();
    assert_eq!(greedy_admitted, 10, "one address holds at most 10 places");
    assert_eq!(admitted, 64, "at most 64 connections wait to log in at once");
    // The admitted ones were held until the grace ran out, not closed early.
    assert!(held_for >= Duration::from_secs(19), "closed after {held_for:?}");

    let count = fixture.exec(&server, "guest", "count demo");
    assert!(count.status.success(), "{}\n{}", text(&count.stderr), server.logs());
    assert_eq!(text(&count.stdout), "0\n");
    assert!(reqwest::blocking::get(format!("{}/healthz", server.base_url)).is_ok_and(|r| r.status().is_success()));

    let logs = server.logs();
    let refusal_lines = logs.matches("ssh connection closed at accept").count();
    assert_eq!(refusal_lines, 1, "236 refusals in one burst are one line and one count\n{logs}");
    assert!(logs.contains("more ssh connections closed at accept count=235"), "{logs}");
    assert_eq!(logs.matches("ssh login took too long").count(), 64, "{logs}");
    assert!(!logs.contains("Too many open files"), "{logs}");
}

// A key added to `authorized_keys` while the server runs lets its owner in from the next login,
// a key taken out is refused from then on, and a file broken halfway through an edit keeps the
// keys read before it (nobody locked out, nobody new let in).
#[test]
fn authorized_keys_changes_count_without_a_restart() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    assert_eq!(fixture.exec(&server, "stranger", "count demo").status.code(), Some(255), "not authorized yet");
    let file = fixture.keys.join("authorized_keys");
    let before = std::fs::read_to_string(&file).unwrap();
    let stranger = std::fs::read_to_string(fixture.keys.join("stranger.pub")).unwrap();
    std::fs::write(&file, format!("{before}{stranger}")).unwrap();
    let admitted = fixture.exec(&server, "stranger", "count demo");
    assert_eq!(admitted.status.code(), Some(0), "{}", text(&admitted.stderr));
    assert!(server.logs().contains("authorized_keys changed"), "{}", server.logs());

    std::fs::write(&file, format!("{before}{stranger}this is not a key\n")).unwrap();
    let kept = fixture.exec(&server, "stranger", "count demo");
    assert_eq!(kept.status.code(), Some(0), "a broken file keeps the keys read before: {}", text(&kept.stderr));
    assert!(server.logs().contains("keeping the keys read before"), "{}", server.logs());

    std::fs::write(&file, &before).unwrap();
    assert_eq!(fixture.exec(&server, "stranger", "count demo").status.code(), Some(255), "taken out again");
    assert_eq!(fixture.exec(&server, "guest", "count demo").status.code(), Some(0));
}

// `--json` works over SSH as on the CLI: the same objects, and errors as JSON with their kind;
// entity and pipeline names are accepted in the same spellings.
#[test]
fn json_answers_over_ssh_match_the_cli() {
    let Some(fixture) = SshFixture::new(&[]) else { return };
    let server = fixture.env.serve();
    let run = fixture.exec(&server, "admin", "run demo --json");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let run: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((run["pipeline"].as_str(), run["inserted"].as_i64()), (Some("demo"), Some(20)), "{run}");
    let count: serde_json::Value =
        serde_json::from_slice(&fixture.exec(&server, "guest", "count demo_records --json").stdout).unwrap();
    assert_eq!(count, serde_json::json!({ "entity": "demo_records", "count": 20 }));
    let cli = fixture.env.json(&["recent", "3", "--json"]);
    let ssh: serde_json::Value =
        serde_json::from_slice(&fixture.exec(&server, "guest", "recent 3 --json").stdout).unwrap();
    assert_eq!(ssh, cli, "one answer, two front doors");
    let missing = fixture.exec(&server, "guest", "count widgets --json");
    assert_eq!(missing.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&missing.stderr).unwrap();
    assert_eq!(error["kind"], "not_found", "{error}");
}
