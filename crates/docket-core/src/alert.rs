//! Alerts: their rows, silences, and the attempt counts the rules watch ([`MonitorStore`]).
//!
//! An alert is one episode of one rule's condition for one subject (a queue, a stage, a
//! provider, or nothing): it opens `pending` when the condition is first seen, becomes `firing`
//! once the condition has held for the rule's `for`, and ends `resolved` when it stops holding
//! (a pending alert that clears resolves without ever firing). Each transition stamps its own
//! time on the row, so the row is the episode's history; the next episode is a new row. At
//! most one alert per rule and subject is open (pending or firing) at a time.
//!
//! [`MonitorStore`]: crate::MonitorStore

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AttemptOutcome, Error};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`: someone is told.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

impl AlertState {
    /// Every state, in lifecycle order.
    pub const ALL: [AlertState; 3] = [
        AlertState::Pending,
        AlertState::Firing,
        AlertState::Resolved,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// Pending or firing.
    pub fn is_open(self) -> bool {
        self != AlertState::Resolved
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Decode(format!("unknown alert state {s:?}")))
    }
}

/// One alert episode, as stored in `docket_alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// Identity, increasing with time.
    pub id: i64,
    /// The rule's name (`dead_letters_high`, `oldest_due_job` …).
    pub rule: String,
    /// What it is about: `queue=default`, `stage=embed`, or empty for the whole deployment.
    pub subject: String,
    /// `pending`, `firing` or `resolved`.
    pub state: AlertState,
    /// `page` (work has stopped moving, or fails now) or `ticket` (waits for a person).
    pub severity: String,
    /// One line a person can act on, as of the latest evaluation.
    pub summary: String,
    /// The figures behind it (counts, ages in seconds, shares), as of the latest evaluation.
    pub figures: serde_json::Value,
    /// When the condition was first seen.
    pub pending_at: DateTime<Utc>,
    /// When it started firing; `None` while pending, or if it resolved before firing.
    pub firing_at: Option<DateTime<Utc>>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When someone was last told about it (firing, repeated, or resolved).
    pub notified_at: Option<DateTime<Utc>>,
    /// The latest evaluation that saw it.
    pub evaluated_at: DateTime<Utc>,
}

/// Open an alert ([`crate::MonitorStore::alert_open`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOpenParams {
    /// The rule.
    pub rule: String,
    /// The subject.
    pub subject: String,
    /// `pending`, or `firing` for a rule without `for`.
    pub state: AlertState,
    /// `page` or `ticket`.
    pub severity: String,
    /// See [`AlertRow::summary`].
    pub summary: String,
    /// See [`AlertRow::figures`].
    pub figures: serde_json::Value,
    /// When (the evaluation's time); also `firing_at` when it opens firing.
    pub now: DateTime<Utc>,
}

/// Move or refresh an open alert ([`crate::MonitorStore::alert_update`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertUpdateParams {
    /// The alert.
    pub id: i64,
    /// The state the caller read: the update applies only while the alert is still in it, so
    /// that of two evaluations racing, one applies.
    pub from: AlertState,
    /// The new state (the same, to refresh the figures).
    pub to: AlertState,
    /// See [`AlertRow::summary`].
    pub summary: String,
    /// See [`AlertRow::figures`].
    pub figures: serde_json::Value,
    /// Whether someone is told now: stamps `notified_at`.
    pub notified: bool,
    /// The evaluation's time: `evaluated_at`, and `firing_at` or `resolved_at` when the state
    /// becomes that.
    pub now: DateTime<Utc>,
}

/// Alerts, newest first ([`crate::MonitorStore::alert_list`]).
#[derive(Debug, Clone, Default)]
pub struct AlertListParams {
    /// Only open (pending or firing) alerts, or only resolved ones.
    pub open: Option<bool>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Cursor: only ids below this one.
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// Silence a rule ([`crate::MonitorStore::alert_silence_insert`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSilenceParams {
    /// The rule.
    pub rule: String,
    /// Only this subject; `None`: every subject of the rule.
    pub subject: Option<String>,
    /// Until when.
    pub until: DateTime<Utc>,
    /// Who: an API key's name, `dashboard:<key name>`, or `cli:<user>`.
    pub actor: String,
    /// Why, in the actor's words.
    pub reason: String,
    /// When; `None`: now.
    pub now: Option<DateTime<Utc>>,
}

/// A silence: while it lasts, alerts of its rule (and subject) are evaluated and recorded as
/// ever, but nobody is told and no banner shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSilenceRow {
    /// Identity.
    pub id: i64,
    /// The rule.
    pub rule: String,
    /// Only this subject; `None`: every subject of the rule.
    pub subject: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// Who made it.
    pub actor: String,
    /// Why.
    pub reason: String,
}

impl AlertSilenceRow {
    /// Whether it covers an alert of `rule` about `subject` at `now`.
    pub fn covers(&self, rule: &str, subject: &str, now: DateTime<Utc>) -> bool {
        self.rule == rule
            && self.subject.as_deref().is_none_or(|s| s == subject)
            && self.until > now
    }
}

/// Attempts that finished in a window, per kind, queue and outcome
/// ([`crate::MonitorStore::job_attempt_counts`]).
#[derive(Debug, Clone)]
pub struct JobAttemptCountsParams {
    /// Attempts that finished at or after this count.
    pub since: DateTime<Utc>,
    /// And at or before this; `None`: now (see the params module docs).
    pub now: Option<DateTime<Utc>>,
}

/// How many attempts of one kind in one queue ended one way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAttemptCountRow {
    /// The job kind.
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// How they ended.
    pub outcome: AttemptOutcome,
    /// Whether these were snoozes: `released` attempts handed back by the handler, with its
    /// reason, rather than at shutdown.
    pub snoozed: bool,
    /// How many.
    pub count: i64,
}

/// The attempts that finished in `[since, until)` ([`crate::MonitorStore::job_attempt_rollup`],
/// [`crate::MonitorStore::job_attempt_errors`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptWindowParams {
    /// Attempts that finished at or after this.
    pub since: DateTime<Utc>,
    /// And before this.
    pub until: DateTime<Utc>,
}

/// Attempts of one kind in one queue that ended one way in a window, with their durations'
/// percentiles (nearest rank: the smallest duration at least that share of the attempts
/// took no longer than).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRollupRow {
    /// The start of the hour (for stored rows; the window's start when read from attempts).
    pub hour: DateTime<Utc>,
    /// The job kind.
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// How they ended.
    pub outcome: AttemptOutcome,
    /// How many.
    pub attempts: i64,
    /// Their durations added up, milliseconds.
    pub total_ms: i64,
    /// Median duration, milliseconds.
    pub p50_ms: i64,
    /// 95th percentile, milliseconds.
    pub p95_ms: i64,
    /// 99th percentile, milliseconds.
    pub p99_ms: i64,
    /// The longest, milliseconds.
    pub max_ms: i64,
}

/// Failed attempts (retried, dead-lettered or rescued) of one kind with one error message in
/// a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptErrorGroup {
    /// The job kind.
    pub job_type: String,
    /// The error, as recorded.
    pub error: String,
    /// How many attempts.
    pub count: i64,
    /// The first one's end.
    pub first_at: DateTime<Utc>,
    /// The last one's end.
    pub last_at: DateTime<Utc>,
    /// The job of the last one.
    pub last_job_id: i64,
}

/// A failure reason: failed attempts of one kind whose errors read the same once ids,
/// numbers and paths are masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReasonRow {
    /// The job kind.
    pub job_type: String,
    /// The masked message (`embedding failed: HTTP <n> from <url>`).
    pub reason: String,
    /// The latest message as recorded.
    pub example: String,
    /// Attempts so far.
    pub count: i64,
    /// The first one seen.
    pub first_seen: DateTime<Utc>,
    /// The latest one.
    pub last_seen: DateTime<Utc>,
    /// Jobs that failed so, newest first (up to 5; they may since have been cleaned up).
    pub example_job_ids: Vec<i64>,
}

/// One hour's analytics, stored at once ([`crate::MonitorStore::analytics_store`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsStoreParams {
    /// The hour's rows; they replace any stored for the same hour, kind, queue and outcome.
    pub rollup: Vec<AttemptRollupRow>,
    /// Failure reasons seen in the hour, each added to its stored row (counts summed, first
    /// and last seen widened, examples the newest).
    pub reasons: Vec<FailureReasonRow>,
    /// The end of the hour: analytics are complete up to here.
    pub rolled_until: DateTime<Utc>,
}

/// Stored hourly rows ([`crate::MonitorStore::analytics_rollup_list`]), oldest hour first.
#[derive(Debug, Clone, Default)]
pub struct RollupListParams {
    /// Hours at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only this kind.
    pub job_type: Option<String>,
}

/// Failure reasons, most attempts first ([`crate::MonitorStore::failure_reason_list`]).
#[derive(Debug, Clone, Default)]
pub struct FailureReasonListParams {
    /// Only this kind.
    pub job_type: Option<String>,
    /// Only those seen at or after this.
    pub seen_since: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: i64,
}

/// What [`crate::MonitorStore::consistency_report`] counts. Every field but the document,
/// chunk and attempt totals is a violation: 0 in a consistent database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// Documents completed.
    pub documents_completed: i64,
    /// Documents failed.
    pub documents_failed: i64,
    /// Chunks stored (every generation).
    pub chunks: i64,
    /// (document, generation, chunk index) stored more than once.
    pub duplicate_chunks: i64,
    /// Completed documents whose `chunk_count` differs from their active generation's chunks.
    pub chunk_count_mismatches: i64,
    /// Chunks of active generations without a vector.
    pub chunks_without_vector: i64,
    /// Jobs with more than one `completed` attempt.
    pub jobs_completed_twice: i64,
    /// Stage jobs (`document:` unique keys) completed more than once.
    pub stages_completed_twice: i64,
    /// Jobs whose attempt counter differs from their recorded attempts (`released` ones aside).
    pub attempts_unrecorded: i64,
    /// Completed jobs without a `completed` attempt.
    pub completed_jobs_without_attempt: i64,
    /// `docket.*` jobs not completed (the cleanup and sweep schedules' aside).
    pub jobs_not_completed: i64,
    /// Attempts by outcome.
    pub attempts_by_outcome: std::collections::BTreeMap<String, i64>,
}

impl ConsistencyReport {
    /// The report from the row of counts a backend read (`count` reads a column by its field
    /// name) and the attempts by outcome.
    pub fn from_counts(
        count: impl Fn(&str) -> crate::Result<i64>,
        attempts_by_outcome: Vec<(String, i64)>,
    ) -> crate::Result<Self> {
        Ok(Self {
            documents_completed: count("documents_completed")?,
            documents_failed: count("documents_failed")?,
            chunks: count("chunks")?,
            duplicate_chunks: count("duplicate_chunks")?,
            chunk_count_mismatches: count("chunk_count_mismatches")?,
            chunks_without_vector: count("chunks_without_vector")?,
            jobs_completed_twice: count("jobs_completed_twice")?,
            stages_completed_twice: count("stages_completed_twice")?,
            attempts_unrecorded: count("attempts_unrecorded")?,
            completed_jobs_without_attempt: count("completed_jobs_without_attempt")?,
            jobs_not_completed: count("jobs_not_completed")?,
            attempts_by_outcome: attempts_by_outcome.into_iter().collect(),
        })
    }

    /// The violations, summed.
    pub fn violations(&self) -> i64 {
        self.duplicate_chunks
            + self.chunk_count_mismatches
            + self.chunks_without_vector
            + self.jobs_completed_twice
            + self.stages_completed_twice
            + self.attempts_unrecorded
            + self.completed_jobs_without_attempt
    }
}
