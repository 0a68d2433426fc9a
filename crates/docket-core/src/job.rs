//! The rows the queue stores.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// Where a job is in its life. Stored as lowercase text (`status` column), so the original
/// system's SQL (`WHERE status = 'failed'`) keeps working.
///
/// ```text
/// queued ──claim──▶ running ──ok──▶ completed
///   ▲                 │ │
///   │                 │ └──permanent error / attempts exhausted──▶ failed ──manual retry──▶ queued
///   └──backoff due── retrying ◀──retryable error
/// queued / retrying / running ──cancel──▶ cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to be claimed; due when `run_at` has passed.
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// A failed attempt waits for its backoff (`run_at`) before it is claimed again.
    Retrying,
    /// Finished successfully.
    Completed,
    /// Dead-lettered: attempts exhausted or a permanent error. Retried only by hand.
    Failed,
    /// Cancelled by a person or a program; never runs again unless retried by hand.
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Retrying,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job still has work ahead of it (queued, retrying or running).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Retrying
        )
    }

    /// Whether the job has finished for good (completed, failed or cancelled).
    pub fn is_finished(self) -> bool {
        !self.is_live()
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Decode(format!("unknown job state {s:?}")))
    }
}

/// One job, as stored in `processing_jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    /// Identity, increasing with insertion.
    pub id: i64,
    /// The job kind: a stable string such as `parse` or `docket.cleanup`.
    pub job_type: String,
    /// The queue the job waits in.
    pub queue: String,
    /// Where the job is in its life.
    pub status: JobState,
    /// 0–10, higher runs first.
    pub priority: i16,
    /// The job's arguments, as JSON.
    pub payload: serde_json::Value,
    /// Attempts started so far (the current one included while running).
    pub attempts: i32,
    /// Attempts allowed before the job is dead-lettered.
    pub max_attempts: i32,
    /// When the job becomes due (scheduled time, or the retry time).
    pub run_at: DateTime<Utc>,
    /// The worker holding the job's lease while it runs.
    pub locked_by: Option<String>,
    /// When the current lease was taken.
    pub locked_at: Option<DateTime<Utc>>,
    /// The error of the most recent failed attempt.
    pub last_error: Option<String>,
    /// Deduplication key: at most one live job holds a given key.
    pub unique_key: Option<String>,
    /// The document this job works on, if any.
    pub document_id: Option<Uuid>,
    /// When the job was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job finished (completed, failed or cancelled).
    pub completed_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// The current claim's token while the job runs (`None` otherwise): every write that
    /// ends the attempt must present it.
    pub claim_token: Option<Uuid>,
    /// Times in a row a worker died running this job (reset when an attempt ends).
    pub rescues: i32,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// The handler succeeded.
    Completed,
    /// The handler failed with a retryable error, or timed out; the job will run again.
    Retried,
    /// The handler failed and the job was dead-lettered.
    Failed,
    /// The worker's lease expired (it died or lost the database); the rescuer ended the
    /// attempt.
    Rescued,
    /// The job was given back uncounted: the worker shut down before the handler finished,
    /// or the handler snoozed it (see the attempt's error); the attempt does not count
    /// against `max_attempts`.
    Released,
    /// The job was cancelled while it ran.
    Cancelled,
}

impl AttemptOutcome {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Rescued => "rescued",
            AttemptOutcome::Released => "released",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

impl FromStr for AttemptOutcome {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            AttemptOutcome::Completed,
            AttemptOutcome::Retried,
            AttemptOutcome::Failed,
            AttemptOutcome::Rescued,
            AttemptOutcome::Released,
            AttemptOutcome::Cancelled,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| Error::Decode(format!("unknown attempt outcome {s:?}")))
    }
}

/// One row of `job_attempts`: the audit trail, one row per attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAttempt {
    /// Identity.
    pub id: i64,
    /// The job.
    pub job_id: i64,
    /// The attempt's number, from 1.
    pub attempt: i32,
    /// The worker that ran it.
    pub worker_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The error, for attempts that did not complete.
    pub error: Option<String>,
    /// `finished_at - started_at`, in milliseconds.
    pub duration_ms: i64,
}

/// A queue's control row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRow {
    /// The queue's name; `*` is the switch for every queue.
    pub name: String,
    /// When the queue was paused; `None` while it runs.
    pub paused_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// The name of the row that pauses every queue at once.
pub const ALL_QUEUES: &str = "*";

/// A worker process, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Unique per process start.
    pub id: String,
    /// The host it runs on.
    pub hostname: String,
    /// Its process id.
    pub pid: i32,
    /// The queues it works.
    pub queues: Vec<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its latest heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// The lease it wrote with that heartbeat, in milliseconds: it is dead once
    /// `heartbeat_at + lease_ms` has passed.
    pub lease_ms: i64,
    /// Whether its lease had lapsed when the list was read (at the list's `now`): a dead
    /// worker's running jobs are stuck until the rescuer takes them back, and its row is
    /// deleted once it holds none.
    pub dead: bool,
}

impl WorkerRow {
    /// When its lease lapses unless it heartbeats again.
    pub fn lease_expires_at(&self) -> DateTime<Utc> {
        self.heartbeat_at + chrono::Duration::milliseconds(self.lease_ms)
    }
}

/// A running job whose worker's lease has lapsed, or whose worker row is gone: one row of the
/// `stuck_jobs` view, as [`crate::QueueExecutor::job_list_stuck`] reads it. The rescuer of the
/// maintenance leader takes these back on its next pass.
///
/// Serialized flat: the job's own fields, then the worker's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StuckJobRow {
    /// The job (its worker is `locked_by`).
    #[serde(flatten)]
    pub job: JobRow,
    /// The worker's latest heartbeat; `None` when its row is gone.
    pub worker_heartbeat_at: Option<DateTime<Utc>>,
    /// The lease the worker wrote with it, in milliseconds; `None` when its row is gone.
    pub worker_lease_ms: Option<i64>,
    /// How long the current attempt had run when the list was read, in milliseconds.
    pub running_for_ms: i64,
}

/// The current maintenance leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderRow {
    /// The leader's worker id.
    pub leader_id: String,
    /// When it was elected.
    pub elected_at: DateTime<Utc>,
    /// When its leadership lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// What the scheduler does with occurrences that passed while nothing was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissedRunPolicy {
    /// Run the most recent missed occurrence once, then resume the schedule (default: a
    /// nightly cleanup missed during an outage runs when the system is back, once).
    #[default]
    RunOnce,
    /// Skip every missed occurrence; resume at the next one.
    Skip,
}

impl MissedRunPolicy {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            MissedRunPolicy::RunOnce => "run_once",
            MissedRunPolicy::Skip => "skip",
        }
    }
}

impl FromStr for MissedRunPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "run_once" => Ok(MissedRunPolicy::RunOnce),
            "skip" => Ok(MissedRunPolicy::Skip),
            _ => Err(Error::Decode(format!("unknown missed-run policy {s:?}"))),
        }
    }
}

/// A named cron schedule, stored in `cron_schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronSchedule {
    /// Unique name.
    pub name: String,
    /// A 5-field (or 6-field, with seconds) cron expression.
    pub expression: String,
    /// IANA time zone the expression is read in, e.g. `Europe/Paris`.
    pub timezone: String,
    /// The kind of job each occurrence enqueues.
    pub job_type: String,
    /// The queue it is enqueued in.
    pub queue: String,
    /// Its payload.
    pub payload: serde_json::Value,
    /// Its priority.
    pub priority: i16,
    /// Paused schedules enqueue nothing.
    pub enabled: bool,
    /// What to do with occurrences missed while nothing ran.
    pub missed_policy: MissedRunPolicy,
    /// The next occurrence to enqueue.
    pub next_run_at: DateTime<Utc>,
    /// The occurrence most recently enqueued.
    pub last_run_at: Option<DateTime<Utc>>,
}

/// One occurrence of a schedule: `cron_runs`, the run history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronRun {
    /// Identity.
    pub id: i64,
    /// The schedule.
    pub schedule_name: String,
    /// The occurrence (the time the expression named).
    pub scheduled_for: DateTime<Utc>,
    /// The job enqueued for it.
    pub job_id: Option<i64>,
    /// `enqueued`, then the job's state as the scheduler last saw it; `skipped` when the
    /// missed-run policy enqueued nothing; `duplicate` when a live job already held the key;
    /// `invalid` when the stored schedule could not run (the message says why).
    pub status: String,
    /// When its job started.
    pub started_at: Option<DateTime<Utc>>,
    /// When its job finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The error, when it failed; or a note such as `manual`.
    pub message: Option<String>,
    /// When the run was recorded.
    pub created_at: DateTime<Utc>,
}

/// One row of `job_queue_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatRow {
    /// The job kind.
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// The state.
    pub status: JobState,
    /// Jobs of that kind, queue and state.
    pub count: i64,
    /// The oldest `created_at` among them.
    pub oldest_created_at: Option<DateTime<Utc>>,
}

/// Jobs finished in one minute ([`crate::QueueExecutor::job_throughput`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobThroughputRow {
    /// The start of the minute (UTC, seconds zero).
    pub minute: DateTime<Utc>,
    /// Jobs completed in it.
    pub completed: i64,
    /// Attempts that dead-lettered their job in it (see [`JobActivityRow::failed_last_hour`]).
    pub failed: i64,
}

/// Recent throughput and the wait of the oldest due job, per kind and queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobActivityRow {
    /// The job kind.
    pub job_type: String,
    /// The queue.
    pub queue: String,
    /// Jobs completed in the minute before `now`.
    pub completed_last_minute: i64,
    /// Attempts that dead-lettered their job in the minute before `now`.
    pub failed_last_minute: i64,
    /// Jobs completed in the hour before `now`.
    pub completed_last_hour: i64,
    /// Attempts that dead-lettered their job in the hour before `now`: outcome `failed`, or
    /// `rescued` on the job's last allowed attempt, counted by the attempt's `finished_at`.
    /// Counted from `job_attempts`, so a dead letter later retried by hand (even to success)
    /// stays counted when it failed. Attempts that failed with attempts left (`retried`, or
    /// `rescued` before the last) are not counted: the job has not failed yet, and counting them
    /// would count one job many times.
    pub failed_last_hour: i64,
    /// When the longest-waiting due job (queued or retrying, `run_at` passed) became due.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

/// One operator action, as recorded in `docket_audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Identity, increasing with time.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// What it was done to, besides jobs.
    pub target: Option<String>,
    /// The jobs it changed.
    pub job_ids: Vec<i64>,
    /// The filter used, counts, anything else worth keeping.
    pub detail: serde_json::Value,
}
