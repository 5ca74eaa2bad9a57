//! Schedule specifications: when a pipeline should run.
//!
//! Accepted forms (the pipeline's name seeds every hashed value, so it is stable across restarts
//! and different for each pipeline, spreading pipelines that share a spec over time):
//!
//! * a cron expression with seconds, `sec min hour day-of-month month day-of-week [year]`, as the
//!   `cron` crate reads it (`0 */5 * * * *`), or the classic five fields, which run at second 0;
//! * hashed fields in the Jenkins style: `H` (one stable value in the field's range), `H/30`
//!   (every 30, from a stable offset), `H(0-29)` and `H(0-29)/10`;
//! * `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` (cron shorthands);
//! * `@every 30s`, `@every 1h30m`: a fixed interval from a stable per-pipeline phase;
//! * `never` (or `off`, `manual`): run only when asked.
//!
//! Cron fields are read in the schedule's time zone. An optional jitter adds a stable
//! per-slot delay, and maintenance windows push a slot that falls inside them to the window's end.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid schedule {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error(
        "invalid maintenance window {window:?}: {reason} (expected e.g. \"Sun 02:00-04:00\" or \"daily 23:30-00:30\")"
    )]
    InvalidWindow { window: String, reason: String },
    #[error("unknown time zone {0:?} (expected an IANA name such as \"UTC\" or \"America/Chicago\")")]
    UnknownTimeZone(String),
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name.trim()).map_err(|_| ScheduleError::UnknownTimeZone(name.to_owned()))
}

/// A stable 64-bit FNV-1a hash. `std`'s hasher is not guaranteed stable across releases, and
/// hashed schedules must not move when the binary is rebuilt.
fn stable_hash(parts: &[&[u8]]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[derive(Clone)]
enum Kind {
    Cron(Box<cron::Schedule>),
    Every { interval_ms: i64, phase_ms: i64 },
    Never,
}

/// A parsed schedule for one pipeline.
#[derive(Clone)]
pub struct Schedule {
    spec: String,
    /// The cron expression after hashed fields were resolved (shown to operators).
    resolved: String,
    kind: Kind,
    time_zone: Tz,
    jitter: Duration,
    pipeline: String,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("spec", &self.spec)
            .field("resolved", &self.resolved)
            .field("time_zone", &self.time_zone)
            .field("jitter", &self.jitter)
            .finish()
    }
}

/// Inclusive bounds of each cron field (seconds, minutes, hours, day of month, month, weekday).
const FIELD_RANGES: [(u32, u32); 6] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7)];

impl Schedule {
    /// Parses `spec` for the pipeline `pipeline`, reading cron fields in `time_zone`.
    pub fn parse(spec: &str, pipeline: &str, time_zone: Tz, jitter: Duration) -> Result<Self, ScheduleError> {
        let trimmed = spec.trim();
        let invalid = |reason: String| ScheduleError::Invalid { spec: spec.to_owned(), reason };
        let (kind, resolved) = if matches!(trimmed.to_ascii_lowercase().as_str(), "never" | "off" | "manual" | "") {
            (Kind::Never, "never".to_owned())
        } else if let Some(interval) = trimmed.strip_prefix("@every") {
            let interval = humantime::parse_duration(interval.trim()).map_err(|error| invalid(error.to_string()))?;
            let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
            if interval_ms < 1000 {
                return Err(invalid("the interval must be at least 1s".to_owned()));
            }
            let phase_ms = (stable_hash(&[pipeline.as_bytes(), b"every"]) % interval_ms as u64) as i64;
            (Kind::Every { interval_ms, phase_ms }, trimmed.to_owned())
        } else {
            let resolved = if trimmed.starts_with('@') {
                trimmed.to_owned()
            } else {
                resolve_hashed_fields(trimmed, pipeline).map_err(invalid)?
            };
            let cron = cron::Schedule::from_str(&resolved).map_err(|error| invalid(error.to_string()))?;
            (Kind::Cron(Box::new(cron)), resolved)
        };
        Ok(Self { spec: trimmed.to_owned(), resolved, kind, time_zone, jitter, pipeline: pipeline.to_owned() })
    }

    pub fn spec(&self) -> &str {
        &self.spec
    }

    pub fn resolved(&self) -> &str {
        &self.resolved
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    pub fn is_never(&self) -> bool {
        matches!(self.kind, Kind::Never)
    }

    /// The schedule in words, as people read it on the dashboard: `every 30 minutes at :17
    /// (UTC)`, `daily at 04:05 (America/Chicago)`. Cron schedules too irregular for a sentence
    /// are shown as their resolved fields.
    pub fn in_words(&self) -> String {
        match &self.kind {
            Kind::Never => "never (only when asked)".to_owned(),
            // Counted from the epoch, not from a wall clock: the zone plays no part.
            Kind::Every { interval_ms, .. } => {
                format!("every {}", humantime::format_duration(Duration::from_millis(*interval_ms as u64)))
            }
            Kind::Cron(_) => {
                let words = cron_in_words(&self.resolved).unwrap_or_else(|| format!("cron {}", self.resolved));
                format!("{words} ({})", self.time_zone.name())
            }
        }
    }

    /// The first slot strictly after `after`, before jitter and maintenance windows.
    pub fn next_slot_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Never => None,
            Kind::Cron(cron) => {
                let local = after.with_timezone(&self.time_zone);
                cron.after(&local).next().map(|slot| slot.with_timezone(&Utc))
            }
            Kind::Every { interval_ms, phase_ms } => {
                let now_ms = after.timestamp_millis();
                let periods = (now_ms - phase_ms).div_euclid(*interval_ms) + 1;
                Utc.timestamp_millis_opt(periods * interval_ms + phase_ms).single()
            }
        }
    }

    /// The latest slot at or before `at`: the slot a catch-up run at `at` stands for, so every
    /// node that catches up at about the same time names the same slot.
    pub fn last_slot_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Never => None,
            Kind::Cron(cron) => {
                let local = (at + chrono::Duration::milliseconds(1)).with_timezone(&self.time_zone);
                cron.after(&local).next_back().map(|slot| slot.with_timezone(&Utc))
            }
            Kind::Every { interval_ms, phase_ms } => {
                let periods = (at.timestamp_millis() - phase_ms).div_euclid(*interval_ms);
                Utc.timestamp_millis_opt(periods * interval_ms + phase_ms).single()
            }
        }
    }

    /// When the slot `slot` actually fires: plus its stable jitter, then out of any window.
    pub fn fire_time(&self, slot: DateTime<Utc>, windows: &[MaintenanceWindow]) -> DateTime<Utc> {
        let jitter_ms = i64::try_from(self.jitter.as_millis()).unwrap_or(i64::MAX);
        let mut fire = slot;
        if jitter_ms > 0 {
            let seed = slot.timestamp_millis().to_le_bytes();
            let offset = stable_hash(&[self.pipeline.as_bytes(), &seed]) % jitter_ms as u64;
            fire += chrono::Duration::milliseconds(offset as i64);
        }
        // Windows may touch each other; a handful of hops always suffices for sane configs.
        for _ in 0..16 {
            match windows.iter().find_map(|window| window.end_if_inside(fire)) {
                Some(end) => fire = end,
                None => break,
            }
        }
        fire
    }

    /// The next fire time strictly after `after`.
    pub fn next_fire_after(&self, after: DateTime<Utc>, windows: &[MaintenanceWindow]) -> Option<DateTime<Utc>> {
        self.next_slot_after(after).map(|slot| self.fire_time(slot, windows))
    }
}

/// A resolved cron expression as a sentence, for the regular shapes schedules take; `None`
/// for anything else (lists, ranges of days, months).
fn cron_in_words(resolved: &str) -> Option<String> {
    const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    match resolved.trim() {
        "@hourly" => return Some("hourly at :00".to_owned()),
        "@daily" | "@midnight" => return Some("daily at 00:00".to_owned()),
        "@weekly" => return Some("weekly on Sunday at 00:00".to_owned()),
        "@monthly" => return Some("monthly on the 1st at 00:00".to_owned()),
        "@yearly" | "@annually" => return Some("yearly on 1 January at 00:00".to_owned()),
        _ => {}
    }
    let mut fields: Vec<&str> = resolved.split_whitespace().collect();
    if fields.len() == 5 {
        fields.insert(0, "0");
    }
    if fields.len() == 7 && fields[6] == "*" {
        fields.pop();
    }
    let [second, minute, hour, day, month, weekday] = fields[..] else { return None };
    let number = |field: &str| field.parse::<u32>().ok();
    // `a/k`, `a-b/k` or `*/k`: from a (or the start of the range), every k.
    let step = |field: &str| {
        let (start, every) = field.split_once('/')?;
        let start = if start == "*" { 0 } else { number(start.split('-').next()?)? };
        Some((start, number(every)?))
    };
    number(second)?;
    if day != "*" || month != "*" {
        return None;
    }
    let on_days = match weekday {
        "*" | "?" => None,
        day => Some(match number(day) {
            Some(index @ 1..=7) => DAYS[(index - 1) as usize].to_owned(),
            _ if day.chars().all(|c| c.is_ascii_alphabetic()) => day.to_owned(),
            _ => return None,
        }),
    };
    let words = match (step(minute), number(minute), step(hour), number(hour)) {
        (Some((start, every)), _, None, _) if hour == "*" => format!("every {every} minutes at :{start:02}"),
        (None, Some(minute), None, _) if hour == "*" => format!("hourly at :{minute:02}"),
        (None, Some(minute), Some((start, every)), _) => {
            format!("every {every} hours at :{minute:02} (from {start:02}:{minute:02})")
        }
        (None, Some(minute), None, Some(hour)) => match &on_days {
            Some(day) => return Some(format!("weekly on {day} at {hour:02}:{minute:02}")),
            None => format!("daily at {hour:02}:{minute:02}"),
        },
        _ => return None,
    };
    match on_days {
        Some(day) => Some(format!("{words}, on {day}")),
        None => Some(words),
    }
}

/// Replaces hashed tokens (`H`, `H/n`, `H(a-b)`, `H(a-b)/n`) by stable values for `pipeline`.
fn resolve_hashed_fields(spec: &str, pipeline: &str) -> Result<String, String> {
    let mut fields: Vec<String> = spec.split_whitespace().map(str::to_owned).collect();
    if fields.len() == 5 {
        fields.insert(0, "0".to_owned()); // classic cron: run at second 0
    }
    if !(6..=7).contains(&fields.len()) {
        let found = fields.len();
        return Err(format!(
            "found {found} field{}; a schedule is 5 cron fields (minute hour day month weekday), 6 or 7 with seconds first, `@every 30m`, `@hourly`/`@daily`/`@weekly`, or `never`",
            if found == 1 { "" } else { "s" }
        ));
    }
    for (index, field) in fields.iter_mut().enumerate() {
        if !field.contains('H') {
            continue;
        }
        let Some(&(low, high)) = FIELD_RANGES.get(index) else {
            return Err("H is not allowed in the year field".to_owned());
        };
        let hash = stable_hash(&[pipeline.as_bytes(), &[index as u8]]);
        let parts: Result<Vec<String>, String> =
            field.split(',').map(|part| resolve_hashed_part(part, low, high, hash)).collect();
        *field = parts?.join(",");
    }
    Ok(fields.join(" "))
}

fn resolve_hashed_part(part: &str, low: u32, high: u32, hash: u64) -> Result<String, String> {
    let Some(rest) = part.strip_prefix('H') else { return Ok(part.to_owned()) };
    let (range, step) = match rest.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step.parse().map_err(|_| format!("bad step in {part:?}"))?;
            if step == 0 {
                return Err(format!("zero step in {part:?}"));
            }
            (range, Some(step))
        }
        None => (rest, None),
    };
    let (low, high) = if range.is_empty() {
        (low, high)
    } else {
        let inner = range
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("bad hashed range in {part:?}"))?;
        let (a, b) = inner.split_once('-').ok_or_else(|| format!("bad hashed range in {part:?}"))?;
        let a: u32 = a.trim().parse().map_err(|_| format!("bad hashed range in {part:?}"))?;
        let b: u32 = b.trim().parse().map_err(|_| format!("bad hashed range in {part:?}"))?;
        if a > b || a < low || b > high {
            return Err(format!("hashed range in {part:?} is outside {low}-{high}"));
        }
        (a, b)
    };
    let span = u64::from(high - low + 1);
    Ok(match step {
        None => (low + (hash % span) as u32).to_string(),
        Some(step) => {
            let start = low + (hash % u64::from(step).min(span)) as u32;
            format!("{start}-{high}/{step}")
        }
    })
}

/// A recurring period during which scheduled runs are held back (manual runs still go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Weekdays on which the window *starts*; empty means every day.
    days: Vec<Weekday>,
    start: NaiveTime,
    end: NaiveTime,
    time_zone: Tz,
    source: String,
}

impl MaintenanceWindow {
    /// Parses `"Sun 02:00-04:00"`, `"sat,sun 01:00-05:00"` or `"daily 23:30-00:30"` (a window may
    /// cross midnight), with times read in `time_zone`.
    pub fn parse(text: &str, time_zone: Tz) -> Result<Self, ScheduleError> {
        let invalid =
            |reason: &str| ScheduleError::InvalidWindow { window: text.to_owned(), reason: reason.to_owned() };
        let mut words = text.split_whitespace();
        let (days_word, times) = match (words.next(), words.next(), words.next()) {
            (Some(days), Some(times), None) => (days, times),
            (Some(times), None, None) => ("daily", times),
            _ => return Err(invalid("expected \"<days> HH:MM-HH:MM\"")),
        };
        let days = if days_word.eq_ignore_ascii_case("daily") || days_word == "*" {
            Vec::new()
        } else {
            days_word
                .split(',')
                .map(|day| Weekday::from_str(day.trim()).map_err(|_| invalid("unknown weekday")))
                .collect::<Result<Vec<_>, _>>()?
        };
        let (start, end) = times.split_once('-').ok_or_else(|| invalid("missing '-' between start and end"))?;
        let start = NaiveTime::parse_from_str(start, "%H:%M").map_err(|_| invalid("bad start time"))?;
        let end = NaiveTime::parse_from_str(end, "%H:%M").map_err(|_| invalid("bad end time"))?;
        if start == end {
            return Err(invalid("the window is empty"));
        }
        Ok(Self { days, start, end, time_zone, source: text.to_owned() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// If `at` falls inside an occurrence of this window, the end of that occurrence.
    pub fn end_if_inside(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.time_zone);
        // The occurrence containing `at` started today or, for windows crossing midnight, yesterday.
        for days_back in 0..=1 {
            let start_date = local.date_naive() - chrono::Days::new(days_back);
            if !self.days.is_empty() && !self.days.contains(&start_date.weekday()) {
                continue;
            }
            let crosses_midnight = self.end <= self.start;
            let end_date = if crosses_midnight { start_date + chrono::Days::new(1) } else { start_date };
            let start = self.time_zone.from_local_datetime(&start_date.and_time(self.start)).earliest()?;
            let end = self.time_zone.from_local_datetime(&end_date.and_time(self.end)).latest()?;
            if start <= local && local < end {
                return Some(end.with_timezone(&Utc));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Schedules in words: the regular shapes get a sentence, the rest their resolved fields.
    #[test]
    fn schedules_read_as_sentences() {
        let words = |spec: &str, zone: Tz| Schedule::parse(spec, "items", zone, Duration::ZERO).unwrap().in_words();
        assert_eq!(words("0 17/30 * * * *", Tz::UTC), "every 30 minutes at :17 (UTC)");
        assert_eq!(words("*/10 * * * *", Tz::UTC), "every 10 minutes at :00 (UTC)");
        assert_eq!(words("30 2 * * *", Tz::America__Chicago), "daily at 02:30 (America/Chicago)");
        assert_eq!(words("0 5 * * * *", Tz::UTC), "hourly at :05 (UTC)");
        assert_eq!(words("0 5 1/6 * * *", Tz::UTC), "every 6 hours at :05 (from 01:05) (UTC)");
        assert_eq!(words("0 0 9 * * 2", Tz::UTC), "weekly on Monday at 09:00 (UTC)");
        assert_eq!(words("0 0 9 1 * *", Tz::UTC), "cron 0 0 9 1 * * (UTC)");
        assert_eq!(words("@every 90s", Tz::UTC), "every 1m 30s");
        assert_eq!(words("never", Tz::UTC), "never (only when asked)");
        // Hashed fields read as the values they resolve to.
        let hashed = Schedule::parse("H H/30 * * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        assert!(hashed.in_words().starts_with("every 30 minutes at :"), "{}", hashed.in_words());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    // A plain cron spec yields the calendar's slots in order.
    #[test]
    fn cron_with_seconds_gives_exact_slots() {
        let schedule = Schedule::parse("0 */5 * * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        let first = schedule.next_slot_after(at("2026-01-01T00:03:10Z")).unwrap();
        assert_eq!(first, at("2026-01-01T00:05:00Z"));
        assert_eq!(schedule.next_slot_after(first).unwrap(), at("2026-01-01T00:10:00Z"));
    }

    // Five-field cron runs at second 0.
    #[test]
    fn classic_five_fields_run_at_second_zero() {
        let schedule = Schedule::parse("30 2 * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        assert_eq!(schedule.next_slot_after(at("2026-01-01T00:00:00Z")).unwrap(), at("2026-01-01T02:30:00Z"));
    }

    // Hashed fields are stable for one pipeline and differ between pipelines.
    #[test]
    fn hashed_fields_are_stable_and_spread() {
        let a1 = Schedule::parse("H H/30 * * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        let a2 = Schedule::parse("H H/30 * * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        assert_eq!(a1.resolved(), a2.resolved());
        let names = ["items", "npcs", "tower", "locations", "exchange", "tent"];
        let resolved: std::collections::HashSet<String> = names
            .iter()
            .map(|name| Schedule::parse("H H/30 * * * *", name, Tz::UTC, Duration::ZERO).unwrap().resolved().to_owned())
            .collect();
        assert!(resolved.len() > 1, "all pipelines hashed to one slot: {resolved:?}");
        // Every 30 minutes from the hashed offset: slots are 30 minutes apart.
        let first = a1.next_slot_after(at("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(a1.next_slot_after(first).unwrap() - first, chrono::Duration::minutes(30));
    }

    // H(a-b) stays inside its range.
    #[test]
    fn hashed_range_is_respected() {
        for name in ["a", "b", "c", "d", "e", "f", "g"] {
            let schedule = Schedule::parse("0 H(10-19) * * * *", name, Tz::UTC, Duration::ZERO).unwrap();
            let minute: u32 = schedule.resolved().split(' ').nth(1).unwrap().parse().unwrap();
            assert!((10..=19).contains(&minute));
        }
        assert!(Schedule::parse("0 H(50-70) * * * *", "x", Tz::UTC, Duration::ZERO).is_err());
    }

    // @every intervals are phase-shifted per pipeline but keep their period.
    #[test]
    fn last_slot_is_the_one_before_the_next() {
        for spec in ["@every 30s", "0 */5 * * * *"] {
            let schedule = Schedule::parse(spec, "items", Tz::UTC, Duration::ZERO).unwrap();
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 7, 3).unwrap();
            let last = schedule.last_slot_at_or_before(now).unwrap();
            assert!(last <= now, "{spec}: {last} > {now}");
            assert_eq!(schedule.next_slot_after(last - chrono::Duration::milliseconds(1)), Some(last), "{spec}");
            assert!(schedule.next_slot_after(last).unwrap() > now, "{spec}");
            assert_eq!(schedule.last_slot_at_or_before(last), Some(last), "{spec}: a slot is its own last slot");
        }
    }

    #[test]
    fn every_interval_has_period_and_stable_phase() {
        let schedule = Schedule::parse("@every 30s", "items", Tz::UTC, Duration::ZERO).unwrap();
        let first = schedule.next_slot_after(at("2026-01-01T00:00:00Z")).unwrap();
        let second = schedule.next_slot_after(first).unwrap();
        assert_eq!(second - first, chrono::Duration::seconds(30));
        assert!(first > at("2026-01-01T00:00:00Z") && first <= at("2026-01-01T00:00:30Z"));
        assert!(Schedule::parse("@every 10ms", "items", Tz::UTC, Duration::ZERO).is_err());
    }

    // Cron fields are read in the configured time zone.
    #[test]
    fn cron_is_read_in_the_time_zone() {
        let chicago = parse_time_zone("America/Chicago").unwrap();
        let schedule = Schedule::parse("0 0 12 * * Wed", "tent", chicago, Duration::ZERO).unwrap();
        // 2026-01-07 is a Wednesday; noon in Chicago (CST, UTC-6) is 18:00 UTC.
        assert_eq!(schedule.next_slot_after(at("2026-01-05T00:00:00Z")).unwrap(), at("2026-01-07T18:00:00Z"));
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    // Jitter delays a slot by a stable amount below the bound.
    #[test]
    fn jitter_is_bounded_and_stable() {
        let schedule = Schedule::parse("0 0 * * * *", "items", Tz::UTC, Duration::from_secs(60)).unwrap();
        let slot = at("2026-01-01T01:00:00Z");
        let fire = schedule.fire_time(slot, &[]);
        assert!(fire >= slot && fire < slot + chrono::Duration::seconds(60));
        assert_eq!(fire, schedule.fire_time(slot, &[]));
    }

    // A slot inside a maintenance window is pushed to the window's end, across midnight too.
    #[test]
    fn maintenance_windows_defer_slots() {
        let window = MaintenanceWindow::parse("daily 23:30-00:30", Tz::UTC).unwrap();
        let schedule = Schedule::parse("0 0 * * * *", "items", Tz::UTC, Duration::ZERO).unwrap();
        let fire = schedule.next_fire_after(at("2026-01-01T23:10:00Z"), std::slice::from_ref(&window)).unwrap();
        assert_eq!(fire, at("2026-01-02T00:30:00Z"));
        let sunday = MaintenanceWindow::parse("Sun 02:00-04:00", Tz::UTC).unwrap();
        // 2026-01-04 is a Sunday, 2026-01-05 a Monday.
        assert_eq!(sunday.end_if_inside(at("2026-01-04T03:00:00Z")), Some(at("2026-01-04T04:00:00Z")));
        assert_eq!(sunday.end_if_inside(at("2026-01-05T03:00:00Z")), None);
        assert!(MaintenanceWindow::parse("Funday 02:00-04:00", Tz::UTC).is_err());
    }

    // "never" schedules nothing; nonsense is a clear error.
    #[test]
    fn never_and_errors() {
        let never = Schedule::parse("never", "items", Tz::UTC, Duration::ZERO).unwrap();
        assert!(never.next_slot_after(at("2026-01-01T00:00:00Z")).is_none());
        let error = Schedule::parse("every tuesday", "items", Tz::UTC, Duration::ZERO).unwrap_err();
        assert!(error.to_string().contains("every tuesday"));
    }
}
