//! The SSH front door: `ssh -p 2222 hayloft@host count items`, or an interactive prompt.
//!
//! It speaks only the command core: no shell, no files, no subsystems, no port forwarding.
//! Logins are by public key only, from an `authorized_keys` file; keys named in `admins` (by
//! comment or SHA256 fingerprint) may also `run` pipelines. The host key is an Ed25519 key
//! generated on first start and kept (mode 0600) so clients can pin it.
//!
//! The [`SshServer`] actor owns the listening socket (bound before the tree starts, like HTTP)
//! and starts one [`session::SshSession`] actor per connection. Sessions are never restarted —
//! a dropped connection cannot be resumed — and one that fails takes down only its connection.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hayloft_actors::supervisor::ChildContext;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use russh::{MethodKind, MethodSet};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::commands::CommandCore;

pub mod accept;
pub mod editor;
pub mod preauth;
pub mod session;

use accept::{accept_stream, Accepted, LogThrottle, SUMMARY_INTERVAL};
use preauth::{LoginDeadline, PreauthGate};
use session::{ConnectionHandler, SessionSlot, SshSession};

/// `[ssh]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    /// `false` turns the SSH server off.
    pub enabled: bool,
    /// Where it listens (`HAYLOFT_SSH_ADDR`).
    pub addr: SocketAddr,
    /// The host key, created on first start if missing.
    pub host_key: PathBuf,
    /// Public keys allowed to log in, one per line, in OpenSSH's `authorized_keys` format.
    pub authorized_keys: PathBuf,
    /// Keys that may `run` pipelines: each a key comment (`alice@laptop`) or a SHA256
    /// fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it).
    pub admins: Vec<String>,
    /// Sessions open at once; more are refused with a message.
    pub max_sessions: usize,
    /// A session with no input and no command in progress for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long a connection may take from accept to a successful login (banner, key exchange
    /// and authentication); it is then closed.
    #[serde(with = "humantime_serde")]
    pub login_grace: Duration,
    /// Connections not yet logged in, in total; more are closed at accept.
    pub max_unauthenticated: usize,
    /// Connections not yet logged in from one client address; more are closed at accept.
    pub max_unauthenticated_per_address: usize,
    /// The longest command line, in bytes.
    pub max_line: usize,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 2222)),
            host_key: PathBuf::from("hayloft_ssh_host_ed25519_key"),
            authorized_keys: PathBuf::from("authorized_keys"),
            admins: Vec::new(),
            max_sessions: 8,
            idle_timeout: Duration::from_secs(15 * 60),
            login_grace: Duration::from_secs(30),
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 10,
            max_line: hayloft_actors::command::MAX_LINE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot read the SSH host key {path}: {error}")]
    ReadHostKey { path: PathBuf, error: String },
    #[error("cannot write the SSH host key {path}: {error}")]
    WriteHostKey { path: PathBuf, error: String },
    #[error("cannot read {path}: {error}")]
    AuthorizedKeys { path: PathBuf, error: String },
}

/// A key allowed to log in.
#[derive(Debug, Clone)]
pub struct AuthorizedKey {
    pub key: PublicKey,
    /// Its comment, or its fingerprint when it has none: how logs and sessions name it.
    pub name: String,
    pub admin: bool,
}

/// What every connection of one server shares.
pub struct SshShared {
    pub settings: SshSettings,
    pub authorized: AuthorizedKeys,
    config: Arc<russh::server::Config>,
}

/// The keys allowed in, as `authorized_keys` says now: a key added to (or removed from) the file
/// counts from the next login, with no restart. Each login attempt looks at the file's size and
/// modification time (one `stat`, cheap next to the key exchange before it) and reads it again
/// only when they changed. A file that cannot be read or parsed any more keeps the keys read
/// last, with a warning: a half-written file must not lock everybody out, nor let anyone in.
pub struct AuthorizedKeys {
    path: PathBuf,
    admins: Vec<String>,
    current: std::sync::RwLock<KeysRead>,
}

#[derive(Clone)]
struct KeysRead {
    /// Size and modification time of what was read; `None` when there was no file.
    stamp: Option<(u64, std::time::SystemTime)>,
    keys: Arc<Vec<AuthorizedKey>>,
}

fn file_stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

impl AuthorizedKeys {
    /// Reads the file once; an unreadable file at start-up is an error, as before.
    pub fn load(path: &Path, admins: &[String]) -> Result<Self, SshError> {
        let stamp = file_stamp(path);
        let keys = Arc::new(read_authorized_keys(path, admins)?);
        Ok(Self {
            path: path.to_owned(),
            admins: admins.to_vec(),
            current: std::sync::RwLock::new(KeysRead { stamp, keys }),
        })
    }

    /// The keys, read again first if the file changed since.
    pub fn current(&self) -> Arc<Vec<AuthorizedKey>> {
        let stamp = file_stamp(&self.path);
        // A poisoned lock only means a panic while swapping two fields; the value is whole.
        let read = self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if read.stamp == stamp {
            return read.keys;
        }
        let keys = match read_authorized_keys(&self.path, &self.admins) {
            Ok(keys) => Arc::new(keys),
            Err(error) => {
                warn!(%error, kept = read.keys.len(), "cannot read authorized_keys again; keeping the keys read before");
                return read.keys;
            }
        };
        info!(path = %self.path.display(), keys = keys.len(), "authorized_keys changed; read it again");
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = KeysRead { stamp, keys: keys.clone() };
        keys
    }

    /// The entry for `key`, if it may log in.
    pub fn find(&self, key: &PublicKey) -> Option<AuthorizedKey> {
        self.current().iter().find(|entry| entry.key.key_data() == key.key_data()).cloned()
    }
}

/// Reads the host key, or creates one (Ed25519, mode 0600) if the file does not exist.
pub fn load_or_create_host_key(path: &Path) -> Result<PrivateKey, SshError> {
    if path.exists() {
        warn_if_readable_by_others(path);
        let text = std::fs::read_to_string(path)
            .map_err(|error| SshError::ReadHostKey { path: path.to_owned(), error: error.to_string() })?;
        return PrivateKey::from_openssh(text)
            .map_err(|error| SshError::ReadHostKey { path: path.to_owned(), error: error.to_string() });
    }
    let write_error = |error: String| SshError::WriteHostKey { path: path.to_owned(), error };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|error| write_error(error.to_string()))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("hayloft host key");
    let text = key.to_openssh(LineEnding::LF).map_err(|error| write_error(error.to_string()))?;
    write_private(path, text.as_bytes()).map_err(|error| write_error(error.to_string()))?;
    info!(path = %path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "created the SSH host key");
    Ok(key)
}

/// Creates `path` readable by its owner only; never overwrites.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = std::fs::metadata(path) {
            if metadata.permissions().mode() & 0o077 != 0 {
                warn!(path = %path.display(), "the SSH host key is readable by others; chmod 600 it");
            }
        }
    }
}

/// Reads `authorized_keys`; a missing file means nobody can log in yet (with a warning).
pub fn read_authorized_keys(path: &Path, admins: &[String]) -> Result<Vec<AuthorizedKey>, SshError> {
    if !path.exists() {
        warn!(path = %path.display(), "no SSH authorized_keys file: nobody can log in over SSH");
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|error| SshError::AuthorizedKeys { path: path.to_owned(), error: error.to_string() })?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line.parse::<russh::keys::ssh_key::authorized_keys::Entry>().map_err(|error| {
            SshError::AuthorizedKeys { path: path.to_owned(), error: format!("line {}: {error}", number + 1) }
        })?;
        let key = entry.public_key().clone();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let comment = key.comment().to_string();
        let admin = admins.iter().any(|admin| *admin == fingerprint || (!comment.is_empty() && *admin == comment));
        let name = if comment.is_empty() { fingerprint } else { comment };
        keys.push(AuthorizedKey { key, name, admin });
    }
    Ok(keys)
}

impl SshShared {
    pub fn new(settings: SshSettings) -> Result<Self, SshError> {
        let host_key = load_or_create_host_key(&settings.host_key)?;
        let authorized = AuthorizedKeys::load(&settings.authorized_keys, &settings.admins)?;
        for admin in &settings.admins {
            if !authorized.current().iter().any(|key| {
                key.admin && (key.name == *admin || key.key.fingerprint(HashAlg::Sha256).to_string() == *admin)
            }) {
                warn!(admin, "an SSH admin names no key in authorized_keys");
            }
        }
        let mut methods = MethodSet::empty();
        methods.push(MethodKind::PublicKey);
        let config = russh::server::Config {
            server_id: russh::SshId::Standard(format!("SSH-2.0-hayloft_{}", env!("CARGO_PKG_VERSION")).into()),
            methods,
            keys: vec![host_key],
            auth_rejection_time: Duration::from_millis(300),
            // OpenSSH probes with `none` first: answer that one at once.
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: 6,
            // Idle sessions are closed by the session actor (which knows whether a command is
            // streaming); russh only drops peers that stop answering keepalives.
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Ok(Self { settings, authorized, config: Arc::new(config) })
    }
}

/// Binds the SSH address; done before the tree starts, so a taken port is a start-up error.
pub fn bind(settings: &SshSettings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(settings.addr)
        .map_err(|error| anyhow::anyhow!("cannot listen for SSH on {}: {error}", settings.addr))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The SSH server actor: accepts connections and starts a session actor for each.
pub struct SshServer {
    listener: Arc<TcpListener>,
    shared: Arc<SshShared>,
    core: CommandCore,
    active: Arc<AtomicUsize>,
    /// Places for connections that have not logged in yet.
    preauth: Arc<PreauthGate>,
    accept_failures: LogThrottle,
    refusals: LogThrottle,
    child: ChildContext,
}

impl SshServer {
    pub fn new(listener: Arc<TcpListener>, shared: Arc<SshShared>, core: CommandCore, child: ChildContext) -> Self {
        let settings = &shared.settings;
        let preauth = PreauthGate::new(settings.max_unauthenticated, settings.max_unauthenticated_per_address);
        Self {
            listener,
            shared,
            core,
            active: Arc::default(),
            preauth,
            accept_failures: LogThrottle::new(SUMMARY_INTERVAL),
            refusals: LogThrottle::new(SUMMARY_INTERVAL),
            child,
        }
    }
}

impl SshServer {
    /// Writes how many warnings the throttles left out since their last line.
    fn write_summaries(&mut self) {
        let now = tokio::time::Instant::now();
        if let Some(count) = self.accept_failures.left_out(now) {
            warn!(count, "more ssh accepts failed");
        }
        if let Some(count) = self.refusals.left_out(now) {
            warn!(count, waiting = self.preauth.waiting(), "more ssh connections closed at accept");
        }
    }
}

impl Message for Accepted {
    type Result = ();
}

impl Actor for SshServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let listener = match self.listener.try_clone().and_then(tokio::net::TcpListener::from_std) {
            Ok(listener) => listener,
            Err(error) => {
                self.child.fail(format!("cannot reuse the SSH socket: {error}"));
                ctx.stop();
                return;
            }
        };
        info!(
            addr = self.listener.local_addr().ok().map(tracing::field::display),
            keys = self.shared.authorized.current().len(),
            "ssh server started"
        );
        ctx.add_stream(accept_stream(listener));
        ctx.run_interval(SUMMARY_INTERVAL, |server, _ctx| server.write_summaries());
    }
}

impl StreamHandler<Accepted> for SshServer {
    fn handle(&mut self, accepted: Accepted, _ctx: &mut Self::Context) {
        let now = tokio::time::Instant::now();
        let (stream, peer) = match accepted {
            Accepted::Connection(stream, peer) => (stream, peer),
            Accepted::Failed(error) => {
                // Out of file descriptors and the like: keep serving the sessions we have.
                if let Some(left_out) = self.accept_failures.occurred(now) {
                    warn!(%error, left_out, "ssh accept failed; waiting before the next accept");
                }
                return;
            }
        };
        // Counted from accept, so the banner and key exchange are inside the grace too.
        let deadline = now + self.shared.settings.login_grace;
        let permit = match self.preauth.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                if let Some(left_out) = self.refusals.occurred(now) {
                    warn!(%peer, %refusal, left_out, "ssh connection closed at accept");
                }
                // Dropping the stream closes it: no banner, no session actor, no task.
                return;
            }
        };
        let peer = peer.to_string();
        let session = SshSession::new(self.core.clone(), self.shared.clone(), peer.clone()).start();
        let authenticated = Arc::new(AtomicBool::new(false));
        let handler = ConnectionHandler {
            shared: self.shared.clone(),
            session: session.clone(),
            peer: peer.clone(),
            slot: SessionSlot::new(self.active.clone()),
            preauth: permit,
            authenticated: authenticated.clone(),
            user: None,
            channel: None,
        };
        let config = self.shared.config.clone();
        let grace = self.shared.settings.login_grace;
        let stream = LoginDeadline::new(stream, deadline, authenticated.clone());
        self.child.spawn_work("ssh connection", async move {
            let ended = match russh::server::run_stream(config, stream, handler).await {
                Ok(running) => running.await,
                Err(error) => Err(error),
            };
            if !authenticated.load(Ordering::SeqCst) && tokio::time::Instant::now() >= deadline {
                info!(%peer, grace = %humantime::format_duration(grace), "ssh login took too long; disconnected");
            } else if let Err(error) = ended {
                info!(%peer, %error, "ssh connection ended");
            }
        });
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.child.fail("the SSH listener stopped");
        ctx.stop();
    }
}
