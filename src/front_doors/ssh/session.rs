//! One SSH connection: the russh handler that authenticates it and the session actor that runs
//! its commands.
//!
//! The handler lives in russh's connection task and only forwards what the client asks for, as
//! typed messages, to the [`SshSession`] actor; every handler in the actor returns at once and
//! spawns longer work (a command, `logs -f`), so the connection keeps reading input (Ctrl-C)
//! while a command runs. All output goes through one bounded queue to one writer task, which
//! keeps it in order. A session that panics stops alone: its handler then sees a closed mailbox
//! and drops the connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use futures::StreamExt;
use hayloft_actors::command::{Caller, Command, CommandError, LogItem, Reply};
use hayloft_actors::ledger::RunStatus;
use russh::keys::{HashAlg, PublicKey};
use russh::server::{Auth, Handle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Disconnect};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::editor::{Action, LineEditor};
use super::{AuthorizedKey, SshShared};
use crate::commands::CommandCore;

/// How much output may wait for a slow client before `logs -f` starts dropping lines.
const OUTPUT_QUEUE: usize = 256;
/// How many lines may be typed ahead of a running command.
const TYPE_AHEAD: usize = 16;
/// How often the idle timer looks.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Exit statuses an `ssh host <command>` returns.
const EXIT_OK: u32 = 0;
const EXIT_FAILED: u32 = 1;
const EXIT_BAD_REQUEST: u32 = 2;
const EXIT_INTERRUPTED: u32 = 130;

/// Counts sessions; a slot is freed when its connection goes away.
pub struct SessionSlot {
    active: Arc<AtomicUsize>,
    taken: bool,
}

impl SessionSlot {
    pub fn new(active: Arc<AtomicUsize>) -> Self {
        Self { active, taken: false }
    }

    /// Takes a slot if fewer than `limit` are taken.
    fn take(&mut self, limit: usize) -> bool {
        if self.taken {
            return true;
        }
        let taken = self
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |active| (active < limit).then_some(active + 1))
            .is_ok();
        self.taken = taken;
        taken
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        if self.taken {
            self.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The russh side of one connection.
pub struct ConnectionHandler {
    pub shared: Arc<SshShared>,
    pub session: Addr<SshSession>,
    pub peer: String,
    pub slot: SessionSlot,
    /// This connection's place among those not yet logged in; given back at login.
    pub preauth: super::preauth::PreauthPermit,
    /// Set once a key is accepted; the login deadline reads it.
    pub authenticated: Arc<AtomicBool>,
    pub user: Option<AuthorizedKey>,
    pub channel: Option<ChannelId>,
}

impl ConnectionHandler {
    fn find_key(&self, key: &PublicKey) -> Option<AuthorizedKey> {
        self.shared.authorized.find(key)
    }

    /// Forwards a request to the session actor; a dead actor closes the connection.
    async fn forward<M>(&self, message: M) -> Result<M::Result, russh::Error>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        SshSession: Handler<M>,
    {
        self.session.send(message).await.map_err(|_| {
            warn!(peer = %self.peer, "ssh session actor is gone; closing the connection");
            russh::Error::Disconnect
        })
    }
}

impl russh::server::Handler for ConnectionHandler {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        info!(peer = %self.peer, user, "ssh password login refused: only public keys are accepted");
        Ok(Auth::reject())
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        info!(peer = %self.peer, user, "ssh keyboard-interactive login refused: only public keys are accepted");
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        if self.find_key(offer.public_key).is_some() {
            return Ok(Auth::Accept);
        }
        let fingerprint = offer.public_key.fingerprint(HashAlg::Sha256);
        info!(peer = %self.peer, user, %fingerprint, "ssh key refused: not in authorized_keys");
        Ok(Auth::reject())
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        let Some(entry) = self.find_key(key.public_key) else {
            let fingerprint = key.public_key.fingerprint(HashAlg::Sha256);
            info!(peer = %self.peer, user, %fingerprint, "ssh login refused: key not in authorized_keys");
            return Ok(Auth::reject());
        };
        info!(peer = %self.peer, user, key = %entry.name, admin = entry.admin, "ssh login");
        self.user = Some(entry);
        self.authenticated.store(true, Ordering::SeqCst);
        self.preauth.release();
        Ok(Auth::Accept)
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let limit = self.shared.settings.max_sessions;
        if !self.slot.take(limit) {
            warn!(peer = %self.peer, limit, "ssh session refused: too many sessions");
            session.disconnect(
                Disconnect::TooManyConnections,
                &format!("too many sessions (the limit is {limit}); try again later"),
                "en",
            )?;
            return Ok(());
        }
        let Some(user) = self.user.clone() else { return Err(russh::Error::Disconnect) };
        self.forward(Authenticated(Caller::new("ssh", user.name, user.admin))).await
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // One session channel per connection: that is what `ssh` opens.
        if self.channel.is_some() {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channel = Some(channel.id());
        reply.accept().await;
        self.forward(OpenChannel { channel: channel.id(), handle: session.handle() }).await
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forward(Input::Terminal).await?;
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.forward(Input::Shell).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.forward(Input::Exec(data.to_vec())).await
    }

    async fn data(&mut self, _channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        self.forward(Input::Data(data.to_vec())).await
    }

    async fn channel_eof(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.forward(Input::Eof).await
    }

    async fn channel_close(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.session.do_send(Hangup);
        Ok(())
    }

    // Nothing but the command core: no subsystems (sftp), no environment, no forwarding.
    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        info!(peer = %self.peer, subsystem = name, "ssh subsystem refused");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}

impl Drop for ConnectionHandler {
    fn drop(&mut self) {
        self.session.do_send(Hangup);
    }
}

/// Output, in order, for the writer task.
enum Output {
    Data(Bytes),
    /// To the client's stderr (exec only; a terminal gets everything on one stream).
    Error(Bytes),
    Exit(u32),
}

/// Marks the login as done, with who it is.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Authenticated(pub Caller);

/// The session channel is open.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenChannel {
    channel: ChannelId,
    handle: Handle,
}

/// What the client sent on the channel.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Input {
    Terminal,
    Shell,
    Exec(Vec<u8>),
    Data(Vec<u8>),
    Eof,
}

/// The connection is gone.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Hangup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Waiting for `shell` or `exec`.
    Opening,
    /// The interactive prompt.
    Shell,
    /// One command, then the channel closes.
    Exec,
    Closing,
}

/// The actor behind one SSH session.
pub struct SshSession {
    core: CommandCore,
    shared: Arc<SshShared>,
    peer: String,
    caller: Option<Caller>,
    terminal: bool,
    mode: Mode,
    editor: Option<LineEditor>,
    output: Option<mpsc::Sender<Output>>,
    /// The command in progress (cancelled by Ctrl-C).
    busy: Option<SpawnHandle>,
    /// Lines typed ahead while a command runs (at most [`TYPE_AHEAD`]).
    pending: std::collections::VecDeque<String>,
    /// The client sent EOF: a shell without a terminal ends after the command in progress.
    input_closed: bool,
    last_input: Instant,
    /// The command in progress asked for its answer as JSON (`--json`).
    json: bool,
}

impl SshSession {
    pub fn new(core: CommandCore, shared: Arc<SshShared>, peer: String) -> Self {
        Self {
            core,
            shared,
            peer,
            caller: None,
            terminal: false,
            mode: Mode::Opening,
            editor: None,
            output: None,
            busy: None,
            pending: std::collections::VecDeque::new(),
            input_closed: false,
            last_input: Instant::now(),
            json: false,
        }
    }

    fn newline(&self) -> &'static str {
        if self.terminal {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// Text for the client, with line endings fit for its terminal.
    fn text(&self, text: &str) -> Bytes {
        if self.terminal {
            Bytes::from(text.replace('\n', "\r\n"))
        } else {
            Bytes::from(text.to_owned())
        }
    }

    fn write(&self, output: Output) {
        if let Some(sender) = &self.output {
            // The queue only fills when the client stops reading; it is dropped soon after.
            let _ = sender.try_send(output);
        }
    }

    fn prompt(&self) {
        if let Some(editor) = &self.editor {
            self.write(Output::Data(Bytes::from(editor.prompt().to_owned())));
        }
    }

    fn close(&mut self, ctx: &mut Context<Self>, status: u32) {
        if self.mode == Mode::Closing {
            return;
        }
        self.mode = Mode::Closing;
        self.write(Output::Exit(status));
        // The writer closes the channel after the exit status; then the connection ends.
        ctx.run_later(Duration::from_secs(5), |_, ctx| ctx.stop());
    }

    /// Runs one command line; in exec mode the channel closes after it.
    fn run_line(&mut self, line: String, ctx: &mut Context<Self>) {
        let Some(caller) = self.caller.clone() else { return };
        let trimmed = line.trim();
        if self.mode == Mode::Shell && matches!(trimmed, "exit" | "quit" | "logout") {
            self.close(ctx, EXIT_OK);
            return;
        }
        if self.mode == Mode::Shell && trimmed.is_empty() {
            self.prompt();
            return;
        }
        let (line, json) = hayloft_actors::command::take_json_flag(trimmed);
        self.json = json;
        let command = match Command::parse(&line) {
            Ok(command) => command,
            Err(error) => {
                self.finish(Err(error), ctx);
                return;
            }
        };
        if let Command::Logs { follow: true, level } = command {
            match self.core.follow_logs(level) {
                Ok(stream) => self.follow(stream, ctx),
                Err(error) => self.finish(Err(error), ctx),
            }
            return;
        }
        let core = self.core.clone();
        let work = async move { core.execute(&caller, command).await }.into_actor(self).map(|result, session, ctx| {
            session.busy = None;
            session.finish(result, ctx);
        });
        self.busy = Some(ctx.spawn(work));
    }

    /// Writes a command's answer, then shows the prompt again (shell) or closes (exec).
    fn finish(&mut self, result: Result<Reply, CommandError>, ctx: &mut Context<Self>) {
        let status = match &result {
            Ok(Reply::RunFinished(run)) if run.status != RunStatus::Succeeded => EXIT_FAILED,
            Ok(_) => EXIT_OK,
            Err(error) => u32::from(error.exit_code()),
        };
        match result {
            Ok(reply) if self.json => self.write(Output::Data(self.text(&format!("{}\n", reply.to_json())))),
            Ok(reply) => self.write(Output::Data(self.text(&reply.to_text()))),
            Err(error) => {
                let message = if self.json {
                    self.text(&format!("{}\n", serde_json::json!({ "error": error.to_string(), "kind": error.kind() })))
                } else {
                    self.text(&format!("error: {error}\n"))
                };
                self.write(if self.mode == Mode::Exec { Output::Error(message) } else { Output::Data(message) });
            }
        }
        match self.mode {
            Mode::Exec => self.close(ctx, status),
            Mode::Shell => match self.pending.pop_front() {
                Some(next) => self.run_line(next, ctx),
                None if self.input_closed => self.close(ctx, status),
                None => self.prompt(),
            },
            Mode::Opening | Mode::Closing => {}
        }
    }

    /// Streams new log lines until Ctrl-C, the end of input, or the connection goes.
    fn follow(&mut self, stream: impl futures::Stream<Item = LogItem> + Unpin + 'static, ctx: &mut Context<Self>) {
        let newline = self.newline();
        let json = self.json;
        // The state carried along: the output queue and how many lines were dropped since the
        // last one that got through.
        let follow = stream.fold((self.output.clone(), 0u64), move |(output, mut dropped), item| {
            if let Some(sender) = &output {
                if dropped > 0 {
                    let notice = LogItem::Missed { count: dropped }.to_text();
                    if sender.try_send(Output::Data(Bytes::from(format!("{notice}{newline}")))).is_ok() {
                        dropped = 0;
                    }
                }
                let text = if json {
                    format!("{}{newline}", serde_json::to_value(&item).unwrap_or_default())
                } else {
                    format!("{}{newline}", item.to_text())
                };
                if dropped > 0 || sender.try_send(Output::Data(Bytes::from(text))).is_err() {
                    // The client reads slower than we log: drop the line rather than wait.
                    dropped += 1;
                }
            }
            futures::future::ready((output, dropped))
        });
        let work = follow.into_actor(self).map(|_, session, ctx| {
            session.busy = None;
            session.json = false;
            session.finish(Ok(Reply::Help { text: String::new() }), ctx);
        });
        if self.mode == Mode::Shell {
            self.write(Output::Data(self.text("following the logs; Ctrl-C stops\n")));
        }
        self.busy = Some(ctx.spawn(work));
    }

    /// Ctrl-C: stops the command in progress (`logs -f`, a wait for a run).
    fn interrupt(&mut self, ctx: &mut Context<Self>) {
        self.pending.clear();
        if let Some(busy) = self.busy.take() {
            ctx.cancel_future(busy);
            match self.mode {
                Mode::Exec => self.close(ctx, EXIT_INTERRUPTED),
                Mode::Shell => self.prompt(),
                Mode::Opening | Mode::Closing => {}
            }
        } else if self.mode == Mode::Shell {
            self.prompt();
        }
    }
}

impl Actor for SshSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
        ctx.run_interval(IDLE_CHECK, |session, ctx| {
            let idle = session.shared.settings.idle_timeout;
            if session.busy.is_none() && session.mode != Mode::Closing && session.last_input.elapsed() >= idle {
                info!(peer = %session.peer, idle = %humantime::format_duration(idle), "ssh session idle; closing it");
                let message = format!("\nidle for {}; goodbye\n", humantime::format_duration(idle));
                session.write(Output::Data(session.text(&message)));
                session.close(ctx, EXIT_OK);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        info!(peer = %self.peer, "ssh session closed");
    }
}

impl Handler<Authenticated> for SshSession {
    type Result = ();

    fn handle(&mut self, message: Authenticated, _ctx: &mut Self::Context) {
        self.caller = Some(message.0);
    }
}

impl Handler<OpenChannel> for SshSession {
    type Result = ();

    fn handle(&mut self, message: OpenChannel, ctx: &mut Self::Context) {
        let (sender, mut receiver) = mpsc::channel::<Output>(OUTPUT_QUEUE);
        self.output = Some(sender);
        let OpenChannel { channel, handle } = message;
        let peer = self.peer.clone();
        // The one writer: output leaves in the order it was queued.
        let writer = async move {
            while let Some(output) = receiver.recv().await {
                let sent = match output {
                    Output::Data(bytes) => handle.data(channel, bytes).await.is_ok(),
                    Output::Error(bytes) => handle.extended_data(channel, 1, bytes).await.is_ok(),
                    Output::Exit(status) => {
                        let _ = handle.exit_status_request(channel, status).await;
                        let _ = handle.eof(channel).await;
                        let _ = handle.close(channel).await;
                        break;
                    }
                };
                if !sent {
                    break;
                }
            }
            tracing::debug!(%peer, "ssh writer done");
        };
        ctx.spawn(writer.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

impl Handler<Input> for SshSession {
    type Result = ();

    fn handle(&mut self, input: Input, ctx: &mut Self::Context) {
        self.last_input = Instant::now();
        let max_line = self.shared.settings.max_line;
        match input {
            Input::Terminal => self.terminal = true,
            Input::Shell if self.mode == Mode::Opening => {
                self.mode = Mode::Shell;
                self.editor = Some(LineEditor::new(self.terminal, "hayloft> ", max_line));
                let who = self.caller.as_ref().map(|caller| caller.who.clone()).unwrap_or_default();
                let banner = format!(
                    "Hayloft {} — signed in as {who}. Type `help` for the commands, `exit` to leave.\n",
                    env!("CARGO_PKG_VERSION")
                );
                self.write(Output::Data(self.text(&banner)));
                self.prompt();
            }
            Input::Exec(bytes) if self.mode == Mode::Opening => {
                self.mode = Mode::Exec;
                if bytes.len() > max_line {
                    let problem = format!("the command is longer than {max_line} bytes");
                    self.finish(Err(CommandError::Usage { problem, usage: "help".into() }), ctx);
                    return;
                }
                self.run_line(String::from_utf8_lossy(&bytes).into_owned(), ctx);
            }
            Input::Shell | Input::Exec(_) => {
                // A second shell or exec on the same channel: not something `ssh` does.
                self.close(ctx, EXIT_BAD_REQUEST);
            }
            Input::Data(bytes) => match self.mode {
                Mode::Exec => {
                    if bytes.contains(&0x03) {
                        self.interrupt(ctx);
                    }
                }
                Mode::Shell => {
                    let Some(editor) = self.editor.as_mut() else { return };
                    for action in editor.feed(&bytes) {
                        match action {
                            Action::Output(bytes) => self.write(Output::Data(Bytes::from(bytes))),
                            Action::Interrupt => self.interrupt(ctx),
                            // Typed ahead while a command runs: it runs next.
                            Action::Submit(line) if self.busy.is_some() => {
                                if self.pending.len() < TYPE_AHEAD {
                                    self.pending.push_back(line);
                                }
                            }
                            Action::Submit(line) => self.run_line(line, ctx),
                            Action::EndOfInput => {
                                self.write(Output::Data(self.text("\n")));
                                self.close(ctx, EXIT_OK);
                            }
                            Action::Overflow => {
                                warn!(peer = %self.peer, max_line, "ssh input line too long; closing the session");
                                let message = format!("\nerror: lines may be at most {max_line} bytes; goodbye\n");
                                self.write(Output::Data(self.text(&message)));
                                self.close(ctx, EXIT_BAD_REQUEST);
                                return;
                            }
                        }
                    }
                }
                Mode::Opening | Mode::Closing => {}
            },
            Input::Eof => {
                // `ssh host logs -f < /dev/null` keeps following; a shell without a terminal
                // ends with its input, once the command in progress is done.
                self.input_closed = true;
                if self.mode == Mode::Shell && self.busy.is_none() {
                    self.close(ctx, EXIT_OK);
                }
            }
        }
    }
}

impl Handler<Hangup> for SshSession {
    type Result = ();

    fn handle(&mut self, _: Hangup, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
