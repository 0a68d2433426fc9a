//! Analytics that outlive cleanup: every hour, a job (`docket.analytics`, from the built-in
//! schedule of the same name, at five past) rolls the attempts of each hour that has ended
//! into per-kind, per-queue, per-outcome rows (counts, total time, p50/p95/p99, max), and
//! groups failed attempts by their message with ids, numbers and paths masked ([`normalize`]),
//! adding each group's count to its failure reason. Both are kept for
//! `maintenance.analytics_retention_days` (90), long after the cleaner has deleted the job
//! rows (7 days for completed jobs).
//!
//! A pass rolls every hour from where the last one stopped (the cursor) to the last hour
//! that ended a minute ago or more; the first pass starts [`AnalyticsConfig::backfill`] back.
//! An hour is stored in one transaction with the cursor, so a pass that dies leaves whole hours
//! behind it; rolling an hour twice replaces its rows (reasons would count it twice, so the
//! cursor never goes back).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use docket_core::{
    AnalyticsStoreParams, AttemptWindowParams, Clock, CronScheduleSpec, Driver, FailureReasonRow,
    MissedRunPolicy, MonitorStore,
};
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};

/// The job kind and the name of its built-in schedule.
pub const ANALYTICS_KIND: &str = "docket.analytics";

/// Settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsConfig {
    /// How long rollups and failure reasons are kept. Default 90 days.
    pub retention: Duration,
    /// How far back the first pass starts. Default 24 hours.
    pub backfill: Duration,
    /// The most hours one pass rolls. Default 168 (a week).
    pub max_hours: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(90 * 86_400),
            backfill: Duration::from_secs(24 * 3600),
            max_hours: 168,
        }
    }
}

/// The built-in schedule: hourly at five past, in `queue`.
pub fn analytics_schedule(queue: &str) -> CronScheduleSpec {
    CronScheduleSpec {
        name: ANALYTICS_KIND.to_owned(),
        expression: "5 * * * *".to_owned(),
        timezone: "UTC".to_owned(),
        job_type: ANALYTICS_KIND.to_owned(),
        queue: queue.to_owned(),
        payload: serde_json::json!({}),
        priority: 0,
        enabled: true,
        // The next run rolls every hour missed, from the cursor.
        missed_policy: MissedRunPolicy::Skip,
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RollupReport {
    /// Hours rolled.
    pub hours: u32,
    /// Rollup rows stored.
    pub rows: usize,
    /// Failure reasons updated.
    pub reasons: usize,
    /// Rows pruned past the retention.
    pub pruned: u64,
    /// Analytics are complete up to here.
    pub rolled_until: Option<DateTime<Utc>>,
}

/// A message with what varies between occurrences of one failure masked: UUIDs (`<uuid>`),
/// URLs (`<url>`), paths (`<path>`), long hex strings (`<hex>`) and numbers (`<n>`), in that
/// order, and runs of whitespace made one space.
pub fn normalize(message: &str) -> String {
    let mut out = Vec::new();
    for word in message.split_whitespace() {
        out.push(mask_word(word));
    }
    out.join(" ")
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn mask_word(word: &str) -> String {
    // Punctuation around a word stays (`(id`, `42:`, `"…"`).
    let start = word
        .find(|c: char| c.is_alphanumeric() || c == '/' || c == '.' || c == '~')
        .unwrap_or(word.len());
    let end = word
        .rfind(|c: char| c.is_alphanumeric() || c == '/')
        .map_or(start, |i| {
            i + word[i..].chars().next().map_or(1, char::len_utf8)
        });
    if start >= end {
        return word.to_owned();
    }
    let (pre, core, post) = (&word[..start], &word[start..end], &word[end..]);
    let masked = if core.contains("://") {
        "<url>".to_owned()
    } else if (core.starts_with('/') || core.starts_with("./") || core.starts_with("~/"))
        && core.len() > 1
    {
        "<path>".to_owned()
    } else {
        mask_tokens(core)
    };
    format!("{pre}{masked}{post}")
}

/// Within a word: UUIDs, long hex and digit runs.
fn mask_tokens(core: &str) -> String {
    let mut out = String::new();
    let mut rest = core;
    while !rest.is_empty() {
        if rest.len() >= 36 && rest.is_char_boundary(36) && is_uuid(&rest[..36]) {
            out.push_str("<uuid>");
            rest = &rest[36..];
            continue;
        }
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if hex >= 8 && rest.as_bytes()[..hex].iter().any(u8::is_ascii_digit) {
            out.push_str("<hex>");
            rest = &rest[hex..];
        } else if digits > 0 {
            out.push_str("<n>");
            rest = &rest[digits..];
            // A decimal part is the same number.
            if let Some(frac) = rest.strip_prefix('.')
                && frac.starts_with(|c: char| c.is_ascii_digit())
            {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                rest = &frac[n..];
            }
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            // The rest of a word that starts with letters keeps its digits (`utf8`, `h2`).
            if c.is_alphabetic() {
                let n = rest
                    .find(|c: char| !c.is_alphanumeric())
                    .unwrap_or(rest.len());
                let tail = &rest[..n];
                if hex < 8 {
                    out.push_str(tail);
                    rest = &rest[n..];
                }
            }
        }
    }
    out
}

fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::hours(1)).unwrap_or(t)
}

/// One pass at `now`: rolls every ended hour since the cursor, then prunes past the retention.
pub async fn rollup_once<D: Driver>(
    driver: &D,
    config: &AnalyticsConfig,
    now: DateTime<Utc>,
) -> docket_core::Result<RollupReport> {
    let hour = chrono::Duration::hours(1);
    let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let mut report = RollupReport::default();
    let mut c = driver.conn().await?;
    let mut from = match c.analytics_cursor().await? {
        Some(t) => t,
        None => hour_floor(now - chrono(config.backfill)),
    };
    // Attempts are written as they end; a minute's grace covers those still being written.
    let end = hour_floor(now - chrono::Duration::minutes(1));
    while from + hour <= end && report.hours < config.max_hours {
        let window = AttemptWindowParams {
            since: from,
            until: from + hour,
        };
        let rollup = c.job_attempt_rollup(&window).await?;
        let reasons = reasons(c.job_attempt_errors(&window).await?);
        report.rows += rollup.len();
        report.reasons += reasons.len();
        c.analytics_store(&AnalyticsStoreParams {
            rollup,
            reasons,
            rolled_until: from + hour,
        })
        .await?;
        report.hours += 1;
        from += hour;
        report.rolled_until = Some(from);
    }
    report.pruned = c.analytics_prune(now - chrono(config.retention)).await?;
    Ok(report)
}

/// An hour's error groups, merged by kind and masked message.
fn reasons(groups: Vec<docket_core::AttemptErrorGroup>) -> Vec<FailureReasonRow> {
    let mut by: BTreeMap<(String, String), FailureReasonRow> = BTreeMap::new();
    for g in groups {
        let key = (g.job_type.clone(), normalize(&g.error));
        let r = by.entry(key.clone()).or_insert_with(|| FailureReasonRow {
            job_type: key.0,
            reason: key.1,
            example: g.error.clone(),
            count: 0,
            first_seen: g.first_at,
            last_seen: g.last_at,
            example_job_ids: Vec::new(),
        });
        r.count += g.count;
        r.first_seen = r.first_seen.min(g.first_at);
        if g.last_at >= r.last_seen {
            r.last_seen = g.last_at;
            r.example = g.error;
        }
        r.example_job_ids.push(g.last_job_id);
    }
    by.into_values()
        .map(|mut r| {
            r.example_job_ids.sort_unstable_by(|a, b| b.cmp(a));
            r.example_job_ids.dedup();
            r.example_job_ids.truncate(5);
            r
        })
        .collect()
}

/// A day of one kind's attempts, summed from its hourly rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DailyRow {
    /// The day (UTC).
    pub day: chrono::NaiveDate,
    /// The job kind.
    pub job_type: String,
    /// Attempts that completed.
    pub completed: i64,
    /// Attempts that failed and will be retried.
    pub retried: i64,
    /// Attempts that dead-lettered their job.
    pub failed: i64,
    /// Attempts whose worker died.
    pub rescued: i64,
    /// Attempts handed back (snoozed, released at shutdown) or cancelled.
    pub other: i64,
    /// The completed attempts' mean duration, milliseconds.
    pub completed_mean_ms: Option<i64>,
    /// The highest of the day's hourly p95 durations of completed attempts, milliseconds (an
    /// upper bound of the day's p95).
    pub completed_p95_ms_max: Option<i64>,
}

/// Hourly rows summed per day and kind (queues together), by day then kind.
pub fn daily(rows: &[docket_core::AttemptRollupRow]) -> Vec<DailyRow> {
    use docket_core::AttemptOutcome as O;
    let mut by: BTreeMap<(chrono::NaiveDate, String), (DailyRow, i64)> = BTreeMap::new();
    for r in rows {
        let day = r.hour.date_naive();
        let (d, completed_ms) = by.entry((day, r.job_type.clone())).or_insert_with(|| {
            (
                DailyRow {
                    day,
                    job_type: r.job_type.clone(),
                    ..Default::default()
                },
                0,
            )
        });
        match r.outcome {
            O::Completed => {
                d.completed += r.attempts;
                *completed_ms += r.total_ms;
                d.completed_p95_ms_max = Some(d.completed_p95_ms_max.unwrap_or(0).max(r.p95_ms));
            }
            O::Retried => d.retried += r.attempts,
            O::Failed => d.failed += r.attempts,
            O::Rescued => d.rescued += r.attempts,
            O::Released | O::Cancelled => d.other += r.attempts,
        }
    }
    by.into_values()
        .map(|(mut d, ms)| {
            d.completed_mean_ms = (d.completed > 0).then(|| ms / d.completed);
            d
        })
        .collect()
}

/// The analytics job's arguments (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AnalyticsArgs {}

impl JobArgs for AnalyticsArgs {
    const KIND: &'static str = ANALYTICS_KIND;
}

struct AnalyticsWorker {
    config: AnalyticsConfig,
    clock: Arc<dyn Clock>,
}

impl<D: Driver> Worker<D> for AnalyticsWorker {
    type Args = AnalyticsArgs;

    async fn work(&self, ctx: JobContext<D>, _: AnalyticsArgs) -> Result<(), JobError> {
        let report = rollup_once(ctx.driver(), &self.config, self.clock.now())
            .await
            .map_err(JobError::retryable)?;
        tracing::info!(
            hours = report.hours,
            rows = report.rows,
            reasons = report.reasons,
            pruned = report.pruned,
            "analytics rolled up"
        );
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1800)
    }
}

/// Registers the analytics job's handler.
pub fn register<D: Driver>(
    workers: &mut Workers<D>,
    config: AnalyticsConfig,
    clock: Arc<dyn Clock>,
) {
    workers.register(AnalyticsWorker { config, clock });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_varies_is_masked_and_the_words_stay() {
        let cases = [
            (
                "embedding failed: HTTP 503 from https://api.example.com/v1/embeddings after 30.5 s",
                "embedding failed: HTTP <n> from <url> after <n> s",
            ),
            (
                "document 01a2276e-f5aa-7129-af2d-82499252f5c0 not found",
                "document <uuid> not found",
            ),
            (
                "cannot read /var/lib/docket/blobs/ab/abcdef0123: No such file (os error 2)",
                "cannot read <path>: No such file (os error <n>)",
            ),
            ("sha256 9f86d081884c7d65 mismatch", "sha256 <hex> mismatch"),
            ("invalid utf8 at byte 1234", "invalid utf8 at byte <n>"),
            ("job 42:  timed   out", "job <n>: timed out"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), want, "{raw}");
        }
        // Two occurrences of one failure read the same; two failures do not.
        assert_eq!(
            normalize("timeout after 1200 ms on job 7"),
            normalize("timeout after 900 ms on job 31")
        );
        assert_ne!(
            normalize("parse failed: not a PDF"),
            normalize("parse failed: encrypted PDF")
        );
    }
}
