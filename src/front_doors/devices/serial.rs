//! A serial device (a button box, a status light, a small display) speaking a line protocol:
//!
//! ```text
//! device → hayloft          hayloft → device
//! RUN items                 OK run 42 started
//! COUNT items               OK 1138
//! STATUS                    OK items=succeeded npcs=failed demo=never ...
//! FOO                       ERR unknown command `foo`; ...
//!                           EVENT items succeeded +5 ~12 -0      (pushed when a run finishes)
//! ```
//!
//! Lines end with `\n` (a `\r` before it is ignored). A line longer than `max_line` bytes is
//! dropped up to its end and answered `ERR line too long`. The port is read by a dedicated
//! thread (serial I/O blocks) and written by another; the actor in between runs the commands.
//! When the port goes away (unplugged, closed), the actor fails and its supervisor reopens it
//! with backoff.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::Duration;

use actix::prelude::*;
use hayloft_actors::command::{Caller, Command, CommandError, Reply};
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::supervisor::ChildContext;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::commands::CommandCore;

/// `[serial]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialSettings {
    pub enabled: bool,
    /// The device path (`/dev/ttyUSB0`, `/dev/serial/by-id/…`).
    pub port: PathBuf,
    pub baud: u32,
    /// The longest line accepted from the device, in bytes.
    pub max_line: usize,
    /// Whether the device may start runs (`RUN`). A box on the operator's desk usually may.
    pub allow_run: bool,
}

impl Default for SerialSettings {
    fn default() -> Self {
        Self { enabled: false, port: PathBuf::from("/dev/ttyUSB0"), baud: 9600, max_line: 128, allow_run: true }
    }
}

/// How long a blocking read waits before checking whether the actor is still there.
const READ_TIMEOUT: Duration = Duration::from_millis(200);
/// Lines waiting to be written; past this the device is not reading and lines are dropped.
const WRITE_QUEUE: usize = 64;

/// What the reader thread saw.
#[derive(Message)]
#[rtype(result = "()")]
enum FromDevice {
    Line(String),
    TooLong,
    /// The port failed or went away.
    Gone(String),
}

pub struct SerialDevice {
    settings: SerialSettings,
    core: CommandCore,
    events: EventBus,
    child: ChildContext,
    writer: Option<SyncSender<String>>,
}

impl SerialDevice {
    pub fn new(settings: SerialSettings, core: CommandCore, events: EventBus, child: ChildContext) -> Self {
        Self { settings, core, events, child, writer: None }
    }

    fn send_line(&self, line: String) {
        let Some(writer) = &self.writer else { return };
        if let Err(TrySendError::Full(line)) = writer.try_send(line) {
            warn!(line, "the serial device is not reading; line dropped");
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, reason: String) {
        warn!(port = %self.settings.port.display(), %reason, "serial port lost; it will be reopened");
        self.child.fail(reason);
        ctx.stop();
    }
}

/// Turns a protocol line into a command, or the `ERR` to answer.
pub fn parse_line(line: &str) -> Result<Command, CommandError> {
    let command = Command::parse(line)?;
    match command {
        Command::Run { pipeline, .. } => Ok(Command::Run { pipeline, wait: false, allow_mass_delete: false }),
        Command::Count { .. } | Command::Status => Ok(command),
        other => Err(CommandError::Usage {
            problem: format!("`{}` is not part of the serial protocol", other.name()),
            usage: "RUN <pipeline> | COUNT <entity> | STATUS".to_owned(),
        }),
    }
}

/// The one-line answer to a command.
pub fn answer(result: Result<Reply, CommandError>) -> String {
    match result {
        Ok(Reply::RunStarted { run_id, .. }) => format!("OK run {run_id} started"),
        Ok(Reply::Count { count, .. }) => format!("OK {count}"),
        Ok(Reply::Status(report)) => {
            let states: Vec<String> = report
                .pipelines
                .iter()
                .map(|pipeline| format!("{}={}", pipeline.name, pipeline.state_word()))
                .collect();
            format!("OK {}", states.join(" "))
        }
        Ok(other) => format!("OK {}", other.to_text().lines().next().unwrap_or_default()),
        // One line, whatever the message.
        Err(error) => format!("ERR {}", error.to_string().replace(['\n', '\r'], " ")),
    }
}

/// The line pushed when a run finishes.
pub fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::RunFinished { pipeline, status, counts, .. } => {
            Some(format!("EVENT {pipeline} {status} +{} ~{} -{}", counts.inserted, counts.updated, counts.deleted))
        }
        _ => None,
    }
}

/// Reads lines until the port fails or the actor goes away.
fn read_lines(mut port: Box<dyn serialport::SerialPort>, actor: Addr<SerialDevice>, max_line: usize) {
    let mut line = Vec::new();
    let mut discarding = false;
    let mut buffer = [0u8; 256];
    while actor.connected() {
        let read = match port.read(&mut buffer) {
            Ok(0) => {
                actor.do_send(FromDevice::Gone("the port was closed".to_owned()));
                return;
            }
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                actor.do_send(FromDevice::Gone(format!("read failed: {error}")));
                return;
            }
        };
        for &byte in &buffer[..read] {
            match byte {
                b'\n' => {
                    if discarding {
                        discarding = false;
                    } else {
                        let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
                        actor.do_send(FromDevice::Line(text));
                    }
                    line.clear();
                }
                _ if discarding => {}
                _ if line.len() >= max_line => {
                    // Refuse the line once, then skip to its end.
                    discarding = true;
                    line.clear();
                    actor.do_send(FromDevice::TooLong);
                }
                byte => line.push(byte),
            }
        }
    }
}

impl Actor for SerialDevice {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let path = self.settings.port.to_string_lossy().into_owned();
        let port = serialport::new(&path, self.settings.baud).timeout(READ_TIMEOUT).open();
        let (reader, mut writer) = match port.and_then(|port| Ok((port.try_clone()?, port))) {
            Ok(pair) => pair,
            Err(error) => {
                self.fail(ctx, format!("cannot open {path}: {error}"));
                return;
            }
        };
        info!(port = %path, baud = self.settings.baud, "serial device connected");
        let (sender, receiver) = sync_channel::<String>(WRITE_QUEUE);
        self.writer = Some(sender);
        let (addr, max_line) = (ctx.address(), self.settings.max_line);
        let spawned = std::thread::Builder::new()
            .name("serial-reader".into())
            .spawn(move || read_lines(reader, addr, max_line))
            .and_then(|_| {
                std::thread::Builder::new().name("serial-writer".into()).spawn(move || {
                    // Ends when the actor drops its sender (stopped) or the port fails.
                    for line in receiver {
                        if writer.write_all(format!("{line}\n").as_bytes()).and_then(|()| writer.flush()).is_err() {
                            return;
                        }
                    }
                })
            });
        if let Err(error) = spawned {
            self.fail(ctx, format!("cannot start the serial threads: {error}"));
            return;
        }
        ctx.add_stream(self.events.stream());
    }
}

impl Handler<FromDevice> for SerialDevice {
    type Result = ();

    fn handle(&mut self, message: FromDevice, ctx: &mut Self::Context) {
        match message {
            FromDevice::Line(line) if line.trim().is_empty() => {}
            FromDevice::Line(line) => {
                let command = match parse_line(&line) {
                    Ok(command) => command,
                    Err(error) => {
                        self.send_line(answer(Err(error)));
                        return;
                    }
                };
                let caller = Caller::new("serial", self.settings.port.display().to_string(), self.settings.allow_run);
                let core = self.core.clone();
                ctx.spawn(
                    async move { core.execute(&caller, command).await }
                        .into_actor(self)
                        .map(|result, device, _| device.send_line(answer(result))),
                );
            }
            FromDevice::TooLong => {
                self.send_line(format!("ERR line too long (at most {} bytes)", self.settings.max_line));
            }
            FromDevice::Gone(reason) => self.fail(ctx, reason),
        }
    }
}

impl StreamHandler<BusItem> for SerialDevice {
    fn handle(&mut self, item: BusItem, _ctx: &mut Self::Context) {
        if let BusItem::Event(event) = item {
            if let Some(line) = event_line(&event) {
                self.send_line(line);
            }
        }
    }

    // The bus never ends; if it did, the device would simply stop hearing about runs.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_protocol_allows_three_commands() {
        assert_eq!(
            parse_line("RUN items").unwrap(),
            Command::Run { pipeline: "items".into(), wait: false, allow_mass_delete: false }
        );
        assert_eq!(parse_line("count items").unwrap(), Command::Count { entity: "items".into() });
        assert_eq!(parse_line("STATUS").unwrap(), Command::Status);
        assert!(
            answer(Err(parse_line("TREE").unwrap_err())).starts_with("ERR `tree` is not part of the serial protocol")
        );
        assert!(answer(Err(parse_line("BLINK").unwrap_err())).starts_with("ERR unknown command `BLINK`"));
        assert_eq!(answer(Ok(Reply::Count { entity: "items".into(), count: 3 })), "OK 3");
    }
}
