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
