//! Stream Deck keys: press one to run a pipeline, or have it show a count; each pipeline key
//! shows its pipeline's state (idle, running, succeeded, failed), live from the event bus.
//!
//! The hardware sits behind the [`Deck`] trait: `UsbConnector` drives a real deck (USB HID,
//! through `elgato-streamdeck`'s blocking API on a thread of its own; only in builds with the
//! `streamdeck-usb` feature, as its driver links libudev), [`SimulatedDeck`] records
//! the faces it is given and lets a caller press keys, unplug and re-plug it — the tests use it,
//! since no deck is attached to a build machine. A deck that goes away fails the actor, and the
//! supervisor reconnects with backoff; on reconnection every key is drawn again.

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::prelude::*;
use hayloft_actors::command::{Caller, Command, Reply};
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::ledger::RunStatus;
use hayloft_actors::supervisor::ChildContext;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::commands::CommandCore;

/// `[streamdeck]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamDeckSettings {
    pub enabled: bool,
    /// `usb` (the first deck found, or the one with `serial`) or `simulated` (logs key faces).
    pub device: DeckKind,
    pub serial: Option<String>,
    /// Screen brightness, percent.
    pub brightness: u8,
    pub keys: Vec<KeyBinding>,
}

impl Default for StreamDeckSettings {
    fn default() -> Self {
        Self { enabled: false, device: DeckKind::Usb, serial: None, brightness: 60, keys: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeckKind {
    Usb,
    Simulated,
}

/// What one key does: run a pipeline, or show an entity's count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBinding {
    pub key: u8,
    pub run: Option<String>,
    pub count: Option<String>,
}

impl StreamDeckSettings {
    /// Checks each key has exactly one job and names a known pipeline, and that this build can
    /// drive the device asked for.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled && self.device == DeckKind::Usb {
            usb_connector(self)?;
        }
        for binding in &self.keys {
            match (&binding.run, &binding.count) {
                (Some(pipeline), None) if !crate::pipelines::KNOWN.contains(&pipeline.as_str()) => {
                    return Err(format!("key {}: unknown pipeline {pipeline:?}", binding.key));
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => return Err(format!("key {}: give it either `run` or `count`", binding.key)),
            }
            if self.keys.iter().filter(|other| other.key == binding.key).count() > 1 {
                return Err(format!("key {} is bound twice", binding.key));
            }
        }
        Ok(())
    }
}

/// A key's state, which sets its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Idle,
    Running,
    Succeeded,
    Failed,
    /// A count key.
    Count,
}

impl KeyState {
    pub fn color(self) -> [u8; 3] {
        match self {
            KeyState::Idle => [40, 44, 52],
            KeyState::Running => [210, 153, 34],
            KeyState::Succeeded => [26, 127, 55],
            KeyState::Failed => [207, 34, 46],
            KeyState::Count => [33, 70, 140],
        }
    }

    fn of_run(status: RunStatus) -> Self {
        match status {
            RunStatus::Queued | RunStatus::Running => KeyState::Running,
            RunStatus::Succeeded => KeyState::Succeeded,
            RunStatus::Failed | RunStatus::Abandoned => KeyState::Failed,
        }
    }
}

/// What a key shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFace {
    pub label: String,
    pub state: KeyState,
    /// A count key's number.
    pub value: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeckError {
    #[error("no Stream Deck found")]
    NotFound,
    #[error("the Stream Deck went away: {0}")]
    Gone(String),
}

/// One connected deck. Blocking: used from the deck's own thread.
pub trait Deck: Send {
    fn key_count(&self) -> u8;
    fn set_key(&mut self, key: u8, face: &KeyFace) -> Result<(), DeckError>;
    /// Keys pressed down since the last call, waiting up to `timeout` for one.
    fn read_presses(&mut self, timeout: Duration) -> Result<Vec<u8>, DeckError>;
}

/// Finds and opens a deck.
pub trait DeckConnector: Send + Sync {
    fn connect(&self) -> Result<Box<dyn Deck>, DeckError>;
}

// ---------------------------------------------------------------------------------------------
// The real deck.

/// The connector for `device = "usb"`, in builds that have the USB driver.
pub fn usb_connector(settings: &StreamDeckSettings) -> Result<Arc<dyn DeckConnector>, String> {
    #[cfg(feature = "streamdeck-usb")]
    {
        Ok(Arc::new(UsbConnector { serial: settings.serial.clone(), brightness: settings.brightness }))
    }
    #[cfg(not(feature = "streamdeck-usb"))]
    {
        let _ = settings;
        Err(NO_USB.to_owned())
    }
}

#[cfg(not(feature = "streamdeck-usb"))]
const NO_USB: &str = "this build has no USB Stream Deck driver: build with `--features streamdeck-usb` \
     (it needs libudev-dev), or set device = \"simulated\"";

/// Connects to a deck over USB HID.
#[cfg(feature = "streamdeck-usb")]
pub struct UsbConnector {
    pub serial: Option<String>,
    pub brightness: u8,
}

#[cfg(feature = "streamdeck-usb")]
struct UsbDeck {
    deck: elgato_streamdeck::StreamDeck,
    pressed: Vec<bool>,
}

#[cfg(feature = "streamdeck-usb")]
impl DeckConnector for UsbConnector {
    fn connect(&self) -> Result<Box<dyn Deck>, DeckError> {
        let hid = elgato_streamdeck::new_hidapi().map_err(|error| DeckError::Gone(error.to_string()))?;
        let found = elgato_streamdeck::list_devices(&hid)
            .into_iter()
            .find(|(_, serial)| self.serial.as_ref().is_none_or(|wanted| wanted == serial));
        let Some((kind, serial)) = found else { return Err(DeckError::NotFound) };
        let deck = elgato_streamdeck::StreamDeck::connect(&hid, kind, &serial)
            .map_err(|error| DeckError::Gone(error.to_string()))?;
        let _ = deck.set_brightness(self.brightness);
        info!(?kind, %serial, "stream deck connected");
        Ok(Box::new(UsbDeck { pressed: vec![false; usize::from(kind.key_count())], deck }))
    }
}

#[cfg(feature = "streamdeck-usb")]
impl Deck for UsbDeck {
    fn key_count(&self) -> u8 {
        self.deck.kind().key_count()
    }

    fn set_key(&mut self, key: u8, face: &KeyFace) -> Result<(), DeckError> {
        let (width, height) = self.deck.kind().key_image_format().size;
        let image = render(face, width as u32, height as u32);
        let gone = |error: elgato_streamdeck::StreamDeckError| DeckError::Gone(error.to_string());
        self.deck.set_button_image(key, image::DynamicImage::ImageRgb8(image)).map_err(gone)?;
        self.deck.flush().map_err(gone)
    }

    fn read_presses(&mut self, timeout: Duration) -> Result<Vec<u8>, DeckError> {
        match self.deck.read_input(Some(timeout)) {
            Ok(elgato_streamdeck::StreamDeckInput::ButtonStateChange(states)) => {
                let presses = states
                    .iter()
                    .enumerate()
                    .filter(|(index, down)| **down && !self.pressed.get(*index).copied().unwrap_or(false))
                    .filter_map(|(index, _)| u8::try_from(index).ok())
                    .collect();
                self.pressed = states;
                Ok(presses)
            }
            Ok(_) => Ok(Vec::new()),
            Err(error) => Err(DeckError::Gone(error.to_string())),
        }
    }
}

/// A 3×5 pixel font for the digits (and a minus sign), one row per `u8`, high bits left.
const DIGITS: [[u8; 5]; 11] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
    [0b000, 0b000, 0b111, 0b000, 0b000],
];

/// A key image: the state's colour, a lighter frame, and a count key's number in white.
pub fn render(face: &KeyFace, width: u32, height: u32) -> image::RgbImage {
    let [r, g, b] = face.state.color();
    let frame = [r.saturating_add(60), g.saturating_add(60), b.saturating_add(60)];
    let mut image = image::RgbImage::from_fn(width, height, |x, y| {
        let edge = x < 3 || y < 3 || x + 3 >= width || y + 3 >= height;
        image::Rgb(if edge { frame } else { [r, g, b] })
    });
    if let Some(value) = face.value {
        let glyphs: Vec<usize> =
            value.to_string().chars().map(|c| c.to_digit(10).map_or(10, |digit| digit as usize)).collect();
        // Each glyph is 3 cells wide plus a 1-cell gap; scale to fit the key.
        let cells = (glyphs.len() as u32 * 4).saturating_sub(1).max(1);
        let scale = ((width * 8 / 10) / cells).clamp(1, height / 8);
        let (left, top) = (width.saturating_sub(cells * scale) / 2, height.saturating_sub(5 * scale) / 2);
        for (index, glyph) in glyphs.iter().enumerate() {
            for (row, bits) in DIGITS[*glyph].iter().enumerate() {
                for column in 0..3u32 {
                    if bits & (0b100 >> column) == 0 {
                        continue;
                    }
                    let x0 = left + (index as u32 * 4 + column) * scale;
                    let y0 = top + row as u32 * scale;
                    for y in y0..(y0 + scale).min(height) {
                        for x in x0..(x0 + scale).min(width) {
                            image.put_pixel(x, y, image::Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
    image
}

// ---------------------------------------------------------------------------------------------
// The simulated deck.

#[derive(Debug)]
struct SimulatedState {
    keys: u8,
    faces: Vec<Option<KeyFace>>,
    /// Every face each key was given, in order.
    history: Vec<(u8, KeyFace)>,
    presses: VecDeque<u8>,
    plugged: bool,
    connections: u32,
    /// Connection attempts made while unplugged.
    refused: u32,
}

/// A deck that exists only in memory: it records what it is shown and lets its holder press
/// keys, unplug it and plug it back. Clones share the same deck.
#[derive(Clone, Debug)]
pub struct SimulatedDeck {
    state: Arc<Mutex<SimulatedState>>,
}

impl SimulatedDeck {
    pub fn new(keys: u8) -> Self {
        let state = SimulatedState {
            keys,
            faces: vec![None; usize::from(keys)],
            history: Vec::new(),
            presses: VecDeque::new(),
            plugged: true,
            connections: 0,
            refused: 0,
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut SimulatedState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn press(&self, key: u8) {
        self.with(|state| state.presses.push_back(key));
    }

    pub fn unplug(&self) {
        self.with(|state| {
            state.plugged = false;
            state.faces.iter_mut().for_each(|face| *face = None);
        });
    }

    pub fn plug(&self) {
        self.with(|state| state.plugged = true);
    }

    pub fn face(&self, key: u8) -> Option<KeyFace> {
        self.with(|state| state.faces.get(usize::from(key)).cloned().flatten())
    }

    /// The states key `key` went through, in order, without repeats.
    pub fn states(&self, key: u8) -> Vec<KeyState> {
        self.with(|state| {
            let mut states: Vec<KeyState> =
                state.history.iter().filter(|(index, _)| *index == key).map(|(_, face)| face.state).collect();
            states.dedup();
            states
        })
    }

    /// How many times the deck was connected.
    pub fn connections(&self) -> u32 {
        self.with(|state| state.connections)
    }

    /// How many connection attempts found it unplugged.
    pub fn refused_connections(&self) -> u32 {
        self.with(|state| state.refused)
    }
}

struct SimulatedConnection {
    deck: SimulatedDeck,
}

impl DeckConnector for SimulatedDeck {
    fn connect(&self) -> Result<Box<dyn Deck>, DeckError> {
        self.with(|state| {
            if !state.plugged {
                state.refused += 1;
                return Err(DeckError::NotFound);
            }
            state.connections += 1;
            Ok(())
        })?;
        Ok(Box::new(SimulatedConnection { deck: self.clone() }))
    }
}

impl Deck for SimulatedConnection {
    fn key_count(&self) -> u8 {
        self.deck.with(|state| state.keys)
    }

    fn set_key(&mut self, key: u8, face: &KeyFace) -> Result<(), DeckError> {
        self.deck.with(|state| {
            if !state.plugged {
                return Err(DeckError::Gone("unplugged".to_owned()));
            }
            if let Some(slot) = state.faces.get_mut(usize::from(key)) {
                *slot = Some(face.clone());
                state.history.push((key, face.clone()));
            }
            info!(key, label = %face.label, state = ?face.state, value = ?face.value, "simulated stream deck key");
            Ok(())
        })
    }

    fn read_presses(&mut self, timeout: Duration) -> Result<Vec<u8>, DeckError> {
        let presses = self.deck.with(|state| {
            if !state.plugged {
                return Err(DeckError::Gone("unplugged".to_owned()));
            }
            Ok(state.presses.drain(..).collect::<Vec<u8>>())
        })?;
        if presses.is_empty() {
            std::thread::sleep(timeout);
        }
        Ok(presses)
    }
}

// ---------------------------------------------------------------------------------------------
// The actor.

/// How long one read waits before the deck thread looks for new faces to draw.
const POLL: Duration = Duration::from_millis(50);

/// From the deck thread.
#[derive(Message)]
#[rtype(result = "()")]
enum FromDeck {
    Connected(u8),
    Pressed(u8),
    Gone(String),
}

/// To the deck thread.
enum ToDeck {
    Draw(u8, KeyFace),
}

pub struct StreamDeckActor {
    bindings: Vec<KeyBinding>,
    connector: Arc<dyn DeckConnector>,
    core: CommandCore,
    events: EventBus,
    child: ChildContext,
    faces: Vec<(u8, KeyFace)>,
    deck: Option<Sender<ToDeck>>,
}

impl StreamDeckActor {
    pub fn new(
        bindings: Vec<KeyBinding>,
        connector: Arc<dyn DeckConnector>,
        core: CommandCore,
        events: EventBus,
        child: ChildContext,
    ) -> Self {
        Self { bindings, connector, core, events, child, faces: Vec::new(), deck: None }
    }

    fn draw(&mut self, key: u8, face: KeyFace) {
        if let Some((_, current)) = self.faces.iter_mut().find(|(index, _)| *index == key) {
            if *current == face {
                return;
            }
            *current = face.clone();
        } else {
            self.faces.push((key, face.clone()));
        }
        if let Some(deck) = &self.deck {
            let _ = deck.send(ToDeck::Draw(key, face));
        }
    }

    fn set_pipeline(&mut self, pipeline: &str, state: KeyState) {
        let keys: Vec<u8> =
            self.bindings.iter().filter(|binding| binding.run.as_deref() == Some(pipeline)).map(|b| b.key).collect();
        for key in keys {
            self.draw(key, KeyFace { label: pipeline.to_owned(), state, value: None });
        }
    }

    /// Asks the core for every count key's number.
    fn refresh_counts(&mut self, ctx: &mut Context<Self>) {
        for binding in self.bindings.clone() {
            let Some(entity) = binding.count else { continue };
            let core = self.core.clone();
            let caller = Caller::new("streamdeck", "deck", false);
            let command = Command::Count { entity: entity.clone() };
            ctx.spawn(async move { core.execute(&caller, command).await }.into_actor(self).map(
                move |result, deck, _| match result {
                    Ok(Reply::Count { count, .. }) => {
                        deck.draw(binding.key, KeyFace { label: entity, state: KeyState::Count, value: Some(count) });
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, key = binding.key, "stream deck count failed"),
                },
            ));
        }
    }

    /// Draws every pipeline key from the latest runs.
    fn refresh_pipelines(&mut self, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        ctx.spawn(async move { core.status().await }.into_actor(self).map(|result, deck, _| match result {
            Ok(report) => {
                for pipeline in report.pipelines {
                    let state = pipeline.state().map_or(KeyState::Idle, KeyState::of_run);
                    deck.set_pipeline(&pipeline.name, state);
                }
            }
            Err(error) => warn!(%error, "stream deck status failed"),
        }));
    }
}

/// The deck thread: connects, then draws what it is sent and reports presses, until the deck
/// goes away or the actor does.
fn drive(connector: Arc<dyn DeckConnector>, actor: Addr<StreamDeckActor>, faces: Receiver<ToDeck>) {
    let mut deck = match connector.connect() {
        Ok(deck) => deck,
        Err(error) => {
            actor.do_send(FromDeck::Gone(error.to_string()));
            return;
        }
    };
    actor.do_send(FromDeck::Connected(deck.key_count()));
    loop {
        loop {
            match faces.try_recv() {
                Ok(ToDeck::Draw(key, face)) => {
                    if let Err(error) = deck.set_key(key, &face) {
                        actor.do_send(FromDeck::Gone(error.to_string()));
                        return;
                    }
                }
                Err(TryRecvError::Empty) => break,
                // The actor stopped: leave the deck alone.
                Err(TryRecvError::Disconnected) => return,
            }
        }
        match deck.read_presses(POLL) {
            Ok(presses) => presses.into_iter().for_each(|key| actor.do_send(FromDeck::Pressed(key))),
            Err(error) => {
                actor.do_send(FromDeck::Gone(error.to_string()));
                return;
            }
        }
    }
}

impl Actor for StreamDeckActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (sender, receiver) = channel();
        self.deck = Some(sender);
        let (connector, addr) = (self.connector.clone(), ctx.address());
        if let Err(error) =
            std::thread::Builder::new().name("stream-deck".into()).spawn(move || drive(connector, addr, receiver))
        {
            self.child.fail(format!("cannot start the deck thread: {error}"));
            ctx.stop();
            return;
        }
        ctx.add_stream(self.events.stream());
    }
}

impl Handler<FromDeck> for StreamDeckActor {
    type Result = ();

    fn handle(&mut self, message: FromDeck, ctx: &mut Self::Context) {
        match message {
            FromDeck::Connected(keys) => {
                info!(keys, "stream deck ready");
                // A fresh connection shows nothing yet: draw every key again.
                let faces = std::mem::take(&mut self.faces);
                for (key, face) in faces {
                    self.draw(key, face);
                }
                self.refresh_pipelines(ctx);
                self.refresh_counts(ctx);
            }
            FromDeck::Pressed(key) => {
                let Some(binding) = self.bindings.iter().find(|binding| binding.key == key).cloned() else { return };
                if let Some(pipeline) = binding.run {
                    let core = self.core.clone();
                    let caller = Caller::new("streamdeck", format!("key {key}"), true);
                    let command = Command::Run { pipeline, wait: false, allow_mass_delete: false };
                    ctx.spawn(async move { core.execute(&caller, command).await }.into_actor(self).map(
                        move |result, _, _| {
                            if let Err(error) = result {
                                warn!(key, %error, "stream deck run refused");
                            }
                        },
                    ));
                } else {
                    self.refresh_counts(ctx);
                }
            }
            FromDeck::Gone(reason) => {
                warn!(%reason, "stream deck lost; reconnecting with backoff");
                self.child.fail(reason);
                ctx.stop();
            }
        }
    }
}

impl StreamHandler<BusItem> for StreamDeckActor {
    fn handle(&mut self, item: BusItem, ctx: &mut Self::Context) {
        let BusItem::Event(event) = item else { return };
        match &*event {
            Event::RunStarted { pipeline, .. } => self.set_pipeline(pipeline, KeyState::Running),
            Event::RunFinished { pipeline, status, .. } => {
                self.set_pipeline(pipeline, KeyState::of_run(*status));
                self.refresh_counts(ctx);
            }
            _ => {}
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_images_show_state_and_number() {
        let face = KeyFace { label: "items".into(), state: KeyState::Failed, value: None };
        let image = render(&face, 72, 72);
        assert_eq!(image.get_pixel(36, 36).0, KeyState::Failed.color());
        let count = KeyFace { label: "items".into(), state: KeyState::Count, value: Some(1138) };
        let image = render(&count, 72, 72);
        let white = image.pixels().filter(|pixel| pixel.0 == [255, 255, 255]).count();
        assert!(white > 50, "the digits are drawn ({white} white pixels)");
    }

    #[test]
    fn bindings_are_checked() {
        let bind = |key, run: Option<&str>, count: Option<&str>| KeyBinding {
            key,
            run: run.map(str::to_owned),
            count: count.map(str::to_owned),
        };
        let settings = |keys| StreamDeckSettings { keys, ..StreamDeckSettings::default() };
        assert!(settings(vec![bind(0, Some("items"), None), bind(1, None, Some("items"))]).validate().is_ok());
        assert!(settings(vec![bind(0, Some("nope"), None)]).validate().unwrap_err().contains("unknown pipeline"));
        assert!(settings(vec![bind(0, Some("items"), Some("items"))]).validate().is_err());
        assert!(settings(vec![bind(0, None, Some("items")), bind(0, None, Some("npcs"))]).validate().is_err());
    }

    #[test]
    fn the_simulated_deck_records_and_unplugs() {
        let deck = SimulatedDeck::new(6);
        let mut connection = deck.connect().unwrap();
        let face = KeyFace { label: "demo".into(), state: KeyState::Running, value: None };
        connection.set_key(2, &face).unwrap();
        assert_eq!(deck.face(2), Some(face));
        deck.press(2);
        assert_eq!(connection.read_presses(Duration::ZERO).unwrap(), vec![2]);
        deck.unplug();
        assert!(connection.read_presses(Duration::ZERO).is_err());
        assert!(deck.connect().is_err());
        deck.plug();
        assert!(deck.connect().is_ok());
        assert_eq!(deck.connections(), 2);
    }
}
