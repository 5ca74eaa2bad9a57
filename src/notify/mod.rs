//! Notifications through an outbox: at-least-once, never lost.
//!
//! When a load writes changes, one `outbox` row per configured channel is written **in the same
//! transaction** as those changes (`load_dataset` in `crate::pipelines::shared::table`); when a
//! run fails or is refused by the delete guard, in the same transaction as the run's result
//! ([`crate::db::ledger::SqlLedger`]). [`Announcements`] decides what each deserves; the daily
//! report is written on its own schedule.
//! The [`sender::OutboxSender`] actor delivers due rows and marks each delivered only after the
//! channel accepted it, retrying failures with exponential backoff. A crash between sending and
//! marking means the row is sent again after the restart: duplicates are possible in that
//! window, losses are not. Each channel receives its messages in the order they were written: a
//! message waiting for a retry holds back the later ones of its channel.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use hayloft_actors::ledger::{FailureKind, RunRecord, RunStatus};
use serde::{Deserialize, Serialize};

use crate::db::outbox::{Announcer, ChangeSummary, OutboxEntry, NEW_NAMES};

pub mod sender;
pub mod store;

/// `[notify]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySettings {
    /// Discord- or Slack-compatible incoming webhooks.
    pub webhooks: Vec<Webhook>,
    /// A Discord channel id the bot posts to (needs the bot's token, `[discord]`).
    pub discord_channel: Option<u64>,
    /// Notify when a run changed something.
    pub on_changes: bool,
    /// Notify when a run failed.
    pub on_failure: bool,
    /// Notify when the delete guard refused a run.
    pub on_delete_guard: bool,
    /// When to send the daily report (a schedule: cron, `@daily`...), in `timezone`; unset: none.
    pub daily_report: Option<String>,
    /// Attempts per message before it is set aside as undeliverable (kept, with its last error).
    pub max_attempts: i32,
    /// First retry delay; doubles with each failure up to `retry_max`.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long one delivery may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            discord_channel: None,
            on_changes: true,
            on_failure: true,
            on_delete_guard: true,
            daily_report: None,
            max_attempts: 20,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// One webhook channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// A short name for logs and the outbox (`ops`, `community`).
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The JSON body a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"content": "…"}` (Discord, and most chat tools that copied it).
    #[default]
    Discord,
    /// `{"text": "…"}` (Slack and Mattermost).
    Slack,
}

impl NotifySettings {
    /// Channel names as stored in outbox rows: `webhook:<name>`, `discord:<channel id>`.
    pub fn channels(&self) -> Vec<String> {
        let webhooks = self.webhooks.iter().map(|webhook| format!("webhook:{}", webhook.name));
        webhooks.chain(self.discord_channel.map(|channel| format!("discord:{channel}"))).collect()
    }

    pub fn webhook(&self, channel: &str) -> Option<&Webhook> {
        let name = channel.strip_prefix("webhook:")?;
        self.webhooks.iter().find(|webhook| webhook.name == name)
    }

    /// The delay before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 30)).unwrap_or(30));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// Why a message was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Changes,
    Failure,
    DeleteGuard,
    DailyReport,
}

/// What an outbox row carries (stored as JSON in `payload`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

/// Announces on every configured channel what `settings` asks for. The database layer calls it
/// inside the transactions that write a run's changes and its result (see [`Announcer`]).
pub struct Announcements {
    settings: Arc<NotifySettings>,
    channels: Vec<String>,
}

impl Announcements {
    /// `None` when no channel is configured: then nothing is ever written to the outbox.
    pub fn for_settings(settings: Arc<NotifySettings>) -> Option<Arc<dyn Announcer>> {
        let channels = settings.channels();
        if channels.is_empty() {
            return None;
        }
        Some(Arc::new(Self { settings, channels }))
    }
}

impl Announcer for Announcements {
    fn on_changes(&self, summary: &ChangeSummary<'_>) -> Vec<OutboxEntry> {
        notice_for_changes(&self.settings, summary).map(|notice| entries(&self.channels, &notice)).unwrap_or_default()
    }

    fn on_result(&self, run: &RunRecord) -> Vec<OutboxEntry> {
        notice_for_result(&self.settings, run).map(|notice| entries(&self.channels, &notice)).unwrap_or_default()
    }
}

/// One outbox entry per channel for `notice`.
pub fn entries(channels: &[String], notice: &Notice) -> Vec<OutboxEntry> {
    // A `Notice` is two plain fields: serialising it cannot fail.
    let payload = serde_json::to_string(notice).unwrap_or_default();
    channels.iter().map(|channel| OutboxEntry { channel: channel.clone(), payload: payload.clone() }).collect()
}

/// The notice a load's changes deserve, if any: how many rows it added, changed and removed,
/// naming the first few new ones.
pub fn notice_for_changes(settings: &NotifySettings, summary: &ChangeSummary<'_>) -> Option<Notice> {
    let counts = summary.counts;
    if counts.written() == 0 || !settings.on_changes {
        return None;
    }
    let duration = format_duration(summary.elapsed_ms.max(0));
    let mut text = format!(
        "{}: +{} new, {} changed, {} removed in {duration}",
        summary.pipeline, counts.inserted, counts.updated, counts.deleted
    );
    if !summary.new_names.is_empty() {
        let shown: Vec<&str> = summary.new_names.iter().take(NEW_NAMES).map(String::as_str).collect();
        text.push_str(&format!(" — new: {}", shown.join(", ")));
        let more = counts.inserted - shown.len() as i64;
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
    }
    Some(Notice { kind: NoticeKind::Changes, text })
}

/// The notice a finished run deserves, if any: a failure, told apart from a refusal by the
/// delete guard by its recorded kind.
pub fn notice_for_result(settings: &NotifySettings, run: &RunRecord) -> Option<Notice> {
    if run.status != RunStatus::Failed {
        return None;
    }
    let error = run.error.as_deref().unwrap_or("no error recorded");
    if run.failure == Some(FailureKind::Refused) {
        return settings.on_delete_guard.then(|| Notice {
            kind: NoticeKind::DeleteGuard,
            text: format!("{}: refused by the delete guard, nothing written: {error}", run.pipeline),
        });
    }
    let duration = run.duration_ms().map(format_duration).unwrap_or_default();
    settings.on_failure.then(|| Notice {
        kind: NoticeKind::Failure,
        text: format!("{}: run #{} failed{}: {error}", run.pipeline, run.id, prefixed(" after ", &duration)),
    })
}

fn prefixed(prefix: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{prefix}{text}")
    }
}

fn format_duration(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The daily report: per pipeline, runs, failures and changes since `since`.
pub fn daily_report(runs: &[RunRecord], since: DateTime<Utc>) -> Notice {
    let mut lines = vec![format!("Hayloft daily report since {}", since.format("%Y-%m-%d %H:%M UTC"))];
    let mut pipelines: Vec<&str> = runs.iter().map(|run| run.pipeline.as_str()).collect();
    pipelines.sort_unstable();
    pipelines.dedup();
    if pipelines.is_empty() {
        lines.push("no runs".to_owned());
    }
    for pipeline in pipelines {
        let mine: Vec<&RunRecord> = runs.iter().filter(|run| run.pipeline == pipeline).collect();
        let failed = mine.iter().filter(|run| run.status == RunStatus::Failed).count();
        let (inserted, updated, deleted) = mine.iter().fold((0, 0, 0), |(i, u, d), run| {
            (i + run.counts.inserted, u + run.counts.updated, d + run.counts.deleted)
        });
        let mut line = format!("{pipeline}: {} runs, +{inserted} ~{updated} -{deleted}", mine.len());
        if failed > 0 {
            line.push_str(&format!(", {failed} failed"));
        }
        lines.push(line);
    }
    Notice { kind: NoticeKind::DailyReport, text: lines.join("\n") }
}

/// An outbox row as stored.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub notice: Notice,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hayloft_actors::ledger::{RunCounts, Trigger};

    fn run(status: RunStatus, failure: Option<FailureKind>, error: Option<&str>) -> RunRecord {
        let started = Utc::now();
        RunRecord {
            id: 7,
            pipeline: "items".into(),
            status,
            trigger: Trigger::Schedule,
            attempt: 1,
            owner: None,
            slot: None,
            epoch: 1,
            queued_at: started,
            started_at: Some(started),
            finished_at: Some(started + chrono::Duration::milliseconds(38)),
            lease_until: None,
            counts: RunCounts::default(),
            error: error.map(str::to_owned),
            failure,
            notes: Vec::new(),
        }
    }

    fn changes<'a>(counts: RunCounts, names: &'a [String]) -> ChangeSummary<'a> {
        ChangeSummary { pipeline: "items", run_id: 7, counts, new_names: names, elapsed_ms: 38 }
    }

    #[test]
    fn messages_are_short_and_useful() {
        let settings = NotifySettings::default();
        let counts = RunCounts { inserted: 5, updated: 12, deleted: 0, unchanged: 1000 };
        let names: Vec<String> = ["Apple", "Bread", "Carrot"].map(String::from).to_vec();
        let notice = notice_for_changes(&settings, &changes(counts, &names)).unwrap();
        assert_eq!(notice.kind, NoticeKind::Changes);
        assert_eq!(notice.text, "items: +5 new, 12 changed, 0 removed in 38 ms — new: Apple, Bread, Carrot and 2 more");

        let unchanged = RunCounts { unchanged: 1000, ..RunCounts::default() };
        assert_eq!(notice_for_changes(&settings, &changes(unchanged, &[])), None, "no news");
        let succeeded = run(RunStatus::Succeeded, None, None);
        assert_eq!(notice_for_result(&settings, &succeeded), None, "a success is announced by its load");

        let failed =
            notice_for_result(&settings, &run(RunStatus::Failed, Some(FailureKind::Failed), Some("HTTP 503"))).unwrap();
        assert_eq!(failed.text, "items: run #7 failed after 38 ms: HTTP 503");
        let guard = "this run would delete 900 of 1138 rows of items (79%), more than the delete guard allows";
        let refused =
            notice_for_result(&settings, &run(RunStatus::Failed, Some(FailureKind::Refused), Some(guard))).unwrap();
        assert_eq!(refused.kind, NoticeKind::DeleteGuard);
        let worded_alike = run(RunStatus::Failed, Some(FailureKind::Failed), Some(guard));
        assert_eq!(
            notice_for_result(&settings, &worded_alike).unwrap().kind,
            NoticeKind::Failure,
            "by kind, not words"
        );

        let quiet = NotifySettings { on_failure: false, ..NotifySettings::default() };
        assert_eq!(notice_for_result(&quiet, &run(RunStatus::Failed, Some(FailureKind::Failed), Some("x"))), None);
    }

    #[test]
    fn every_channel_gets_an_entry_and_none_without_channels() {
        let settings = NotifySettings {
            webhooks: vec![Webhook {
                name: "ops".into(),
                url: "http://127.0.0.1:9/hook".into(),
                format: WebhookFormat::Discord,
            }],
            discord_channel: Some(42),
            ..NotifySettings::default()
        };
        let announcer = Announcements::for_settings(Arc::new(settings)).unwrap();
        let counts = RunCounts { inserted: 1, ..RunCounts::default() };
        let entries = announcer.on_changes(&changes(counts, &[]));
        let channels: Vec<&str> = entries.iter().map(|entry| entry.channel.as_str()).collect();
        assert_eq!(channels, ["webhook:ops", "discord:42"]);
        assert!(Announcements::for_settings(Arc::new(NotifySettings::default())).is_none());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = NotifySettings::default();
        assert_eq!(settings.backoff(0), Duration::from_secs(2));
        assert_eq!(settings.backoff(3), Duration::from_secs(16));
        assert_eq!(settings.backoff(40), Duration::from_secs(600));
    }

    #[test]
    fn the_daily_report_sums_each_pipeline() {
        let counts = RunCounts { inserted: 2, updated: 1, deleted: 0, unchanged: 0 };
        let succeeded = RunRecord { counts, ..run(RunStatus::Succeeded, None, None) };
        let runs = [succeeded, run(RunStatus::Failed, Some(FailureKind::Failed), Some("x"))];
        let report = daily_report(&runs, Utc::now());
        assert!(report.text.ends_with("items: 2 runs, +2 ~1 -0, 1 failed"), "{}", report.text);
    }
}
