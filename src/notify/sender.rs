//! The outbox sender: delivers due outbox rows to their channels, one at a time, and marks each
//! delivered only once the channel accepted it.
//!
//! It looks for due rows every second and at once when a run finishes (the event bus), so a
//! notification leaves within moments of its run. A failed delivery is retried with exponential
//! backoff (`retry_base` doubling up to `retry_max`); after `max_attempts` the row is kept with
//! its last error, for a person to look at. The daily report is written on its own schedule.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::schedule::Schedule;
use hayloft_actors::supervisor::ChildContext;
use serde_json::json;
use tracing::{error, info, warn};

use super::store;
use super::{daily_report, NotifySettings, OutboxMessage, WebhookFormat};
use crate::db::outbox::NewOutboxRow;
use crate::db::Database;

/// Rows delivered per pass.
const BATCH: i64 = 20;
/// How often due rows are looked for, besides when a run finishes.
const POLL: Duration = Duration::from_secs(1);
/// How much of an error answer is kept in `last_error`.
const ERROR_SNIPPET: usize = 200;

pub struct OutboxSender {
    db: Database,
    settings: Arc<NotifySettings>,
    events: EventBus,
    report: Option<Schedule>,
    client: Option<awc::Client>,
    /// Posts to a Discord channel as the bot, when one is configured.
    discord: Option<Arc<poise::serenity_prelude::Http>>,
    /// A delivery pass is under way.
    busy: bool,
    child: ChildContext,
}

impl OutboxSender {
    pub fn new(
        db: Database,
        settings: Arc<NotifySettings>,
        events: EventBus,
        report: Option<Schedule>,
        discord_token: Option<String>,
        child: ChildContext,
    ) -> Self {
        let discord = discord_token.map(|token| Arc::new(poise::serenity_prelude::Http::new(&token)));
        Self { db, settings, events, report, client: None, discord, busy: false, child }
    }

    /// Starts a delivery pass unless one is running.
    fn kick(&mut self, ctx: &mut Context<Self>) {
        let Some(client) = self.client.clone() else { return };
        if self.busy {
            return;
        }
        self.busy = true;
        let (db, settings) = (self.db.clone(), self.settings.clone());
        let channels = Channels { client, discord: self.discord.clone() };
        let pass = async move { deliver_due(&db, &settings, &channels).await };
        ctx.spawn(pass.into_actor(self).map(|result, sender, _| {
            sender.busy = false;
            if let Err(error) = result {
                warn!(%error, "outbox pass failed; it will be retried");
            }
        }));
    }

    fn schedule_report(&mut self, ctx: &mut Context<Self>) {
        let Some(schedule) = &self.report else { return };
        let now = Utc::now();
        let Some(next) = schedule.next_fire_after(now, &[]) else { return };
        let wait = (next - now).to_std().unwrap_or_default();
        ctx.run_later(wait, move |sender, ctx| {
            let (db, channels) = (sender.db.clone(), sender.settings.channels());
            let child = sender.child.clone();
            ctx.spawn(
                async move {
                    let since = Utc::now() - chrono::Duration::hours(24);
                    let runs = match crate::db::queries::runs_since(&db, since).await {
                        Ok(runs) => runs,
                        Err(error) => {
                            error!(%error, "cannot read the runs for the daily report");
                            return;
                        }
                    };
                    let notice = daily_report(&runs, since);
                    let rows =
                        NewOutboxRow::all_due_now(super::entries(&channels, &notice), None, Utc::now().naive_utc());
                    match store::enqueue(&db, rows).await {
                        Ok(()) => info!("daily report queued"),
                        Err(error) => {
                            error!(%error, "cannot queue the daily report");
                            child.fail(format!("daily report: {error}"));
                        }
                    }
                }
                .into_actor(sender)
                .map(|(), sender, ctx| {
                    sender.kick(ctx);
                    sender.schedule_report(ctx);
                }),
            );
        });
    }
}

/// One pass: every due row, in order.
/// What messages are delivered through.
struct Channels {
    client: awc::Client,
    discord: Option<Arc<poise::serenity_prelude::Http>>,
}

async fn deliver_due(db: &Database, settings: &NotifySettings, channels: &Channels) -> Result<(), crate::db::DbError> {
    let now = Utc::now().naive_utc();
    // Channels whose oldest pending message is not delivered yet: the rest of theirs wait.
    let mut held: HashSet<String> = HashSet::new();
    for message in store::pending(db, settings.max_attempts, BATCH).await? {
        if held.contains(&message.channel) {
            continue;
        }
        if message.next_attempt_at > now {
            held.insert(message.channel.clone());
            continue;
        }
        match deliver(settings, channels, &message).await {
            Ok(()) => {
                // A crash here sends the message again after the restart: at least once.
                crate::failpoint::pause("outbox-after-send");
                store::mark_delivered(db, message.id, Utc::now().naive_utc()).await?;
                info!(id = message.id, channel = %message.channel, "notification delivered");
            }
            Err(problem) => {
                let attempts = message.attempts + 1;
                let retry_in = settings.backoff(message.attempts);
                let retry_at = Utc::now().naive_utc() + chrono::Duration::from_std(retry_in).unwrap_or_default();
                store::mark_failed(db, message.id, &problem, retry_at).await?;
                held.insert(message.channel.clone());
                if attempts >= settings.max_attempts {
                    error!(id = message.id, channel = %message.channel, attempts, %problem, "notification undeliverable; kept in the outbox");
                } else {
                    warn!(id = message.id, channel = %message.channel, attempts, retry_in = %humantime::format_duration(retry_in), %problem, "notification not delivered; will retry");
                }
            }
        }
    }
    Ok(())
}

/// Posts one message to its channel; `Err` says why it was not accepted.
async fn deliver(settings: &NotifySettings, channels: &Channels, message: &OutboxMessage) -> Result<(), String> {
    if let Some(channel) = message.channel.strip_prefix("discord:") {
        let Some(http) = &channels.discord else {
            return Err("posting to a Discord channel needs the bot's token ([discord] token)".to_owned());
        };
        let channel: u64 = channel.parse().map_err(|_| format!("bad Discord channel id {channel:?}"))?;
        let post = poise::serenity_prelude::ChannelId::new(channel).say(http.as_ref(), &message.notice.text);
        return match tokio::time::timeout(settings.timeout, post).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("Discord refused the message: {error}")),
            Err(_) => Err(format!("Discord did not answer within {:?}", settings.timeout)),
        };
    }
    let client = &channels.client;
    let Some(webhook) = settings.webhook(&message.channel) else {
        return Err(format!("channel {} is no longer configured", message.channel));
    };
    let body = match webhook.format {
        WebhookFormat::Discord => json!({ "content": message.notice.text }),
        WebhookFormat::Slack => json!({ "text": message.notice.text }),
    };
    let mut response = client
        .post(&webhook.url)
        .timeout(settings.timeout)
        .insert_header(("Idempotency-Key", format!("hayloft-outbox-{}", message.id)))
        .send_json(&body)
        .await
        .map_err(|error| format!("cannot reach {}: {error}", webhook.name))?;
    if response.status().is_success() {
        return Ok(());
    }
    let answer = response.body().limit(4096).await.unwrap_or_default();
    let snippet: String = String::from_utf8_lossy(&answer).chars().take(ERROR_SNIPPET).collect();
    Err(format!("{} answered {}: {}", webhook.name, response.status(), snippet.trim()))
}

impl Actor for OutboxSender {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.client = Some(awc::Client::builder().timeout(self.settings.timeout).finish());
        ctx.add_stream(self.events.stream());
        ctx.run_interval(POLL, |sender, ctx| sender.kick(ctx));
        self.schedule_report(ctx);
        self.kick(ctx);
    }
}

impl StreamHandler<BusItem> for OutboxSender {
    fn handle(&mut self, item: BusItem, ctx: &mut Self::Context) {
        if let BusItem::Event(event) = item {
            if matches!(&*event, Event::RunFinished { .. }) {
                self.kick(ctx);
            }
        }
    }
}
