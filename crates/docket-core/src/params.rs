//! One params struct per driver method, so that a new field never changes a signature.
//!
//! Times named `now` are optional: `None` means "the database's clock" on PostgreSQL (so that
//! many hosts agree) and the process clock on SQLite. Tests pass an explicit time.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AttemptOutcome, CronSchedule, Error, JobState, MAX_PAYLOAD_BYTES, MissedRunPolicy,
    PRIORITY_MAX, PRIORITY_MIN,
};

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInsertParams {
    /// The job kind.
    pub job_type: String,
    /// The queue; `default` unless set.
    pub queue: String,
    /// 0–10, higher runs first.
    pub priority: i16,
    /// The arguments.
    pub payload: serde_json::Value,
    /// Attempts allowed before the job is dead-lettered.
    pub max_attempts: i32,
    /// Run no earlier than this; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    /// At most one live (queued, retrying or running) job holds a given key; a second insert
    /// with the key returns the first job's id, marked duplicate.
    pub unique_key: Option<String>,
    /// The document the job works on.
    pub document_id: Option<Uuid>,
}

/// The default queue's name.
pub const DEFAULT_QUEUE: &str = "default";
/// Default attempts: the first run plus one retry per default backoff step (60 s, 300 s, 900 s).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 4;

impl JobInsertParams {
    /// A job of `job_type` with `payload`, on the default queue with default options.
    pub fn new(job_type: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            job_type: job_type.into(),
            queue: DEFAULT_QUEUE.to_owned(),
            priority: 0,
            payload,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
            unique_key: None,
            document_id: None,
        }
    }

    /// Checks the fields that every driver would otherwise reject with a less clear message.
    pub fn validate(&self) -> Result<(), Error> {
        if self.job_type.is_empty() {
            return Err(Error::Invalid("job_type must not be empty".into()));
        }
        if self.queue.is_empty() || self.queue == crate::ALL_QUEUES {
            return Err(Error::Invalid(format!(
                "invalid queue name {:?}",
                self.queue
            )));
        }
        if !(PRIORITY_MIN..=PRIORITY_MAX).contains(&self.priority) {
            return Err(Error::Invalid(format!(
                "priority {} is outside {PRIORITY_MIN}..={PRIORITY_MAX}",
                self.priority
            )));
        }
        if self.max_attempts < 1 {
            return Err(Error::Invalid("max_attempts must be at least 1".into()));
        }
        let size = self.payload_len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(Error::PayloadTooLarge {
                size,
                max: MAX_PAYLOAD_BYTES,
            });
        }
        Ok(())
    }

    fn payload_len(&self) -> usize {
        // Counting through a sink avoids allocating the encoded payload twice.
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut c = Count(0);
        serde_json::to_writer(&mut c, &self.payload)
            .map(|_| c.0)
            .unwrap_or(usize::MAX)
    }
}

/// Enqueue many jobs in one statement.
#[derive(Debug, Clone, Default)]
pub struct JobInsertManyParams {
    /// The jobs, validated by the caller ([`JobInsertParams::validate`]).
    pub jobs: Vec<JobInsertParams>,
}

/// What an insert did with one job, in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInsertResult {
    /// The new job's id, or the live job's that already held the unique key.
    pub id: i64,
    /// True when no row was inserted because a live job already held the unique key.
    pub duplicate: bool,
}

/// Claim due jobs: the batch claim.
#[derive(Debug, Clone)]
pub struct JobGetAvailableParams {
    /// The claiming worker; becomes the jobs' `locked_by`.
    pub worker_id: String,
    /// The queue to claim from.
    pub queue: String,
    /// At most this many jobs.
    pub limit: i32,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionOutcome {
    /// Success: the job becomes `completed`.
    Completed,
    /// A retryable failure: the job becomes `retrying`, due at `run_at`.
    Retry {
        /// When to try again.
        run_at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// A permanent failure, or attempts exhausted: the job becomes `failed`.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// The worker is shutting down: the job goes back to `queued`, due now, and this attempt
    /// is not counted.
    Released,
    /// The handler asked to run again later without spending an attempt (its provider is
    /// down, a circuit breaker is open): the job goes back to `queued`, due at `run_at`, and
    /// this attempt is recorded as `released` with the reason.
    Snoozed {
        /// When to run again.
        run_at: DateTime<Utc>,
        /// Why.
        reason: String,
    },
}

impl CompletionOutcome {
    /// What this outcome does to its job and which attempt row it leaves: decided here, once,
    /// for every driver (drivers apply it; none interprets an outcome itself).
    pub fn transition(&self, finished_at: DateTime<Utc>) -> Transition<'_> {
        match self {
            CompletionOutcome::Completed => Transition {
                status: JobState::Completed,
                run_at: None,
                last_error: None,
                attempts_delta: 0,
                completed_at: Some(finished_at),
                attempt_outcome: AttemptOutcome::Completed,
                attempt_error: None,
                rescues_reset: true,
            },
            CompletionOutcome::Retry { run_at, error } => Transition {
                status: JobState::Retrying,
                run_at: Some(*run_at),
                last_error: Some(error),
                attempts_delta: 0,
                completed_at: None,
                attempt_outcome: AttemptOutcome::Retried,
                attempt_error: Some(error),
                rescues_reset: true,
            },
            CompletionOutcome::Failed { error } => Transition {
                status: JobState::Failed,
                run_at: None,
                last_error: Some(error),
                attempts_delta: 0,
                completed_at: Some(finished_at),
                attempt_outcome: AttemptOutcome::Failed,
                attempt_error: Some(error),
                rescues_reset: true,
            },
            // Back to the queue, due later; the attempt is not counted.
            CompletionOutcome::Snoozed { run_at, reason } => Transition {
                status: JobState::Queued,
                run_at: Some(*run_at),
                last_error: None,
                attempts_delta: -1,
                completed_at: None,
                attempt_outcome: AttemptOutcome::Released,
                attempt_error: Some(reason),
                rescues_reset: true,
            },
            // Back to the queue, due now; the attempt is not counted, and the rescues in a row
            // stand (a shutdown says nothing about the job).
            CompletionOutcome::Released => Transition {
                status: JobState::Queued,
                run_at: Some(finished_at),
                last_error: None,
                attempts_delta: -1,
                completed_at: None,
                attempt_outcome: AttemptOutcome::Released,
                attempt_error: Some("released on shutdown"),
                rescues_reset: false,
            },
        }
    }
}

/// A job's new state after an attempt, as [`CompletionOutcome::transition`] decides it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition<'a> {
    /// The job's new state.
    pub status: JobState,
    /// Its new `run_at`; `None` keeps it.
    pub run_at: Option<DateTime<Utc>>,
    /// Its new `last_error`; `None` keeps it.
    pub last_error: Option<&'a str>,
    /// Added to `attempts` (-1 gives the attempt back).
    pub attempts_delta: i32,
    /// Its `completed_at` (cleared when `None`).
    pub completed_at: Option<DateTime<Utc>>,
    /// The attempt row's outcome.
    pub attempt_outcome: AttemptOutcome,
    /// The attempt row's error.
    pub attempt_error: Option<&'a str>,
    /// Whether the count of rescues in a row starts over.
    pub rescues_reset: bool,
}

/// One finished attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCompletion {
    /// The job.
    pub id: i64,
    /// The token of the claim this attempt ran under ([`crate::JobRow::claim_token`]): the
    /// update applies only while the job is still `running` under that claim, so a worker
    /// whose job was rescued, cancelled, retried or released meanwhile (and maybe claimed
    /// again, even by the same worker at the same attempt number) cannot overwrite the newer
    /// state.
    pub claim_token: Uuid,
    /// The attempt number the worker claimed (recorded on the attempt row).
    pub attempt: i32,
    /// The worker (recorded on the attempt row).
    pub worker_id: String,
    /// When the handler started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: CompletionOutcome,
}

/// Finalise many attempts in one statement, recording one `job_attempts` row each.
#[derive(Debug, Clone, Default)]
pub struct JobCompleteManyParams {
    /// The attempts.
    pub completions: Vec<JobCompletion>,
}

/// List jobs, newest first, filtered.
#[derive(Debug, Clone, Default)]
pub struct JobListParams {
    /// Only these states (all when empty).
    pub states: Vec<JobState>,
    /// Only these kinds (all when empty).
    pub job_types: Vec<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this document's jobs.
    pub document_id: Option<Uuid>,
    /// Cursor: only ids below this one.
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// Retry failed or cancelled jobs by hand: back to `queued`, due now, with a fresh grant of
/// attempts (`max_attempts` rises by the job's budget; attempt numbers go on).
#[derive(Debug, Clone, Default)]
pub struct JobRetryParams {
    /// These jobs (must be failed or cancelled); when empty, every failed or cancelled job
    /// matching the filters below.
    pub ids: Vec<i64>,
    /// Only this kind.
    pub job_type: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Cancel jobs that have not finished.
#[derive(Debug, Clone, Default)]
pub struct JobCancelParams {
    /// The jobs.
    pub ids: Vec<i64>,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// List stuck jobs ([`crate::QueueExecutor::job_list_stuck`]): running jobs whose worker's lease
/// has lapsed at `now` (each worker is judged by the lease it wrote with its heartbeat), or
/// whose worker row is gone, i.e. what the rescuer will take back.
#[derive(Debug, Clone)]
pub struct JobListStuckParams {
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
    /// At most this many rows.
    pub limit: i64,
}

/// One rescue, as the engine decided it: back to the queue (due at `run_at`, the attempt
/// counted) or dead-lettered.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRescue {
    /// The job.
    pub id: i64,
    /// The claim being taken back: the rescue applies only while the job still runs under it
    /// (`None`: a claim made before claims had tokens).
    pub claim_token: Option<Uuid>,
    /// The dead claim's attempt (recorded on the attempt row).
    pub attempt: i32,
    /// The dead worker (recorded on the attempt row).
    pub worker_id: String,
    /// When the dead attempt started.
    pub started_at: DateTime<Utc>,
    /// `Queued` (rescues in a row counted) or `Failed`.
    pub status: JobState,
    /// When a requeued job becomes due.
    pub run_at: DateTime<Utc>,
    /// The job's `last_error` and the attempt row's error.
    pub error: String,
    /// The job's `max_attempts` from now on. The rescuer gives a requeued job back the attempt
    /// that died with its worker (one more than before): a worker's death is not the job's
    /// failure; `max_rescues` bounds how often that can happen in a row.
    pub max_attempts: i32,
}

/// Apply rescues ([`crate::QueueExecutor::job_rescue_many`]).
#[derive(Debug, Clone, Default)]
pub struct JobRescueManyParams {
    /// The rescues.
    pub rescues: Vec<JobRescue>,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// What a rescue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobRescueResult {
    /// Jobs put back in the queue.
    pub requeued: Vec<i64>,
    /// Jobs dead-lettered (no attempts left, or their worker died too often in a row).
    pub failed: Vec<i64>,
}

/// Which of these claims are no longer held ([`crate::QueueExecutor::job_claims_lost`]).
#[derive(Debug, Clone, Default)]
pub struct JobClaimsLostParams {
    /// Job ids with the claim token each was run under.
    pub claims: Vec<(i64, Uuid)>,
}

/// Make queued or retrying jobs due now without spending an attempt.
#[derive(Debug, Clone, Default)]
pub struct JobRunNowParams {
    /// These jobs; when empty, every queued or retrying job matching the filters below.
    pub ids: Vec<i64>,
    /// Only this kind.
    pub job_type: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Delete dead letters for good ([`crate::QueueExecutor::job_discard`]).
#[derive(Debug, Clone, Default)]
pub struct JobDiscardParams {
    /// These jobs (must be failed); when empty, every failed job matching the filters below.
    pub ids: Vec<i64>,
    /// Only this kind.
    pub job_type: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
}

/// Record an operator action ([`crate::QueueExecutor::audit_insert`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditInsertParams {
    /// Who: an API key's name, `dashboard:<key name>`, or `cli:<user>`.
    pub actor: String,
    /// What: `retry`, `run_now`, `cancel`, `discard`, `pause`, `resume`, `cron_run`,
    /// `reprocess`, `delete`, `reindex` …
    pub action: String,
    /// What it was done to, besides jobs: a queue, a schedule, a document id.
    pub target: Option<String>,
    /// The jobs it changed.
    pub job_ids: Vec<i64>,
    /// Anything else worth keeping (the filter used, counts).
    pub detail: serde_json::Value,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Operator actions, newest first ([`crate::QueueExecutor::audit_list`]).
#[derive(Debug, Clone, Default)]
pub struct AuditListParams {
    /// Only this action.
    pub action: Option<String>,
    /// Only actions that changed this job.
    pub job_id: Option<i64>,
    /// Cursor: only ids below this one.
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// Cancel documents that have not finished ([`crate::DocumentStore::document_cancel`]).
#[derive(Debug, Clone, Default)]
pub struct DocumentCancelParams {
    /// The documents.
    pub ids: Vec<Uuid>,
    /// Why (stored as the document's error).
    pub reason: String,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Delete finished jobs (and their attempts) older than the cut-offs.
#[derive(Debug, Clone)]
pub struct JobDeleteFinishedParams {
    /// Completed and cancelled jobs finished before this.
    pub completed_before: DateTime<Utc>,
    /// Failed jobs finished before this (kept longer: someone may still inspect them).
    pub failed_before: DateTime<Utc>,
    /// At most this many rows per call.
    pub limit: i64,
}

/// Recent throughput and waits ([`crate::QueueExecutor::job_activity`]).
#[derive(Debug, Clone, Default)]
pub struct JobActivityParams {
    /// The end of the windows; see the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Jobs finished per minute ([`crate::QueueExecutor::job_throughput`]).
#[derive(Debug, Clone)]
pub struct JobThroughputParams {
    /// The start of the window: jobs finished at or after it count.
    pub since: DateTime<Utc>,
    /// The end of the window; see the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Pause or resume a queue (or every queue, with [`crate::ALL_QUEUES`]).
#[derive(Debug, Clone)]
pub struct QueueSetPausedParams {
    /// The queue.
    pub name: String,
    /// Pause (true) or resume (false).
    pub paused: bool,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// A worker's heartbeat: its liveness, and so its jobs' lease.
#[derive(Debug, Clone)]
pub struct WorkerHeartbeatParams {
    /// The worker.
    pub id: String,
    /// Its host.
    pub hostname: String,
    /// Its process id.
    pub pid: i32,
    /// Its queues.
    pub queues: Vec<String>,
    /// How long its running jobs stay its own without another heartbeat (whole milliseconds,
    /// positive): once `now + lease` passes unrenewed, every reader holds the worker dead and
    /// the rescuer takes its jobs back.
    pub lease: Duration,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// List workers ([`crate::QueueExecutor::worker_list`]).
#[derive(Debug, Clone, Default)]
pub struct WorkerListParams {
    /// The time at which each worker is judged live or dead; see the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Forget dead workers ([`crate::QueueExecutor::worker_delete_stale`]).
#[derive(Debug, Clone, Default)]
pub struct WorkerDeleteStaleParams {
    /// Workers whose lease lapsed before this go, unless they still hold a running job; see
    /// the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// Try to become (or stay) the maintenance leader.
#[derive(Debug, Clone)]
pub struct LeaderElectParams {
    /// The candidate.
    pub leader_id: String,
    /// How long the leadership lasts unless renewed.
    pub ttl: Duration,
    /// See the module docs.
    pub now: Option<DateTime<Utc>>,
}

/// A cron schedule as a person defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronScheduleSpec {
    /// Unique name.
    pub name: String,
    /// Cron expression (5 fields, or 6 with seconds first).
    pub expression: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// The job kind each occurrence enqueues.
    pub job_type: String,
    /// Its queue.
    pub queue: String,
    /// Its payload.
    pub payload: serde_json::Value,
    /// Its priority.
    pub priority: i16,
    /// Whether the schedule runs.
    pub enabled: bool,
    /// What to do with occurrences missed while nothing ran.
    pub missed_policy: MissedRunPolicy,
}

/// Create or update a cron schedule.
#[derive(Debug, Clone)]
pub struct CronScheduleUpsertParams {
    /// The schedule.
    pub spec: CronScheduleSpec,
    /// The first occurrence after now, used when the schedule is new or its expression or
    /// time zone changed; an unchanged schedule keeps its stored `next_run_at`.
    pub next_run_at: DateTime<Utc>,
}

/// Enqueue one occurrence of a schedule, exactly once across every node.
#[derive(Debug, Clone)]
pub struct CronRunEnqueueParams {
    /// The schedule.
    pub schedule_name: String,
    /// The occurrence being run.
    pub scheduled_for: DateTime<Utc>,
    /// Advance the schedule only if its `next_run_at` is still this (another node may have
    /// advanced it). `None` for a manual run, which does not move the schedule.
    pub expected_next_run_at: Option<DateTime<Utc>>,
    /// The schedule's new `next_run_at` (ignored for a manual run).
    pub next_run_at: DateTime<Utc>,
    /// What the occurrence does: enqueue a job, or record why it enqueues none.
    pub action: CronRunAction,
    /// A note kept on the run (`manual`, `missed 3 occurrences`, why it is invalid …).
    pub message: Option<String>,
}

impl CronRunEnqueueParams {
    /// The job to enqueue, if the occurrence enqueues one.
    pub fn job(&self) -> Option<&JobInsertParams> {
        match &self.action {
            CronRunAction::Enqueue(job) => Some(job),
            CronRunAction::Skip | CronRunAction::Invalid => None,
        }
    }

    /// The status of the run row when no job is enqueued: `skipped` or `invalid`.
    pub fn jobless_status(&self) -> &'static str {
        match self.action {
            CronRunAction::Invalid => "invalid",
            CronRunAction::Enqueue(_) | CronRunAction::Skip => "skipped",
        }
    }
}

/// What one occurrence of a schedule does ([`CronRunEnqueueParams::action`]). The engine
/// decides; the driver records.
#[derive(Debug, Clone, PartialEq)]
pub enum CronRunAction {
    /// Enqueue this job; its unique key should name the schedule and occurrence. The run is
    /// `enqueued`, or `duplicate` when a live job already holds the key.
    Enqueue(JobInsertParams),
    /// Enqueue nothing because the missed-run policy said so: the run is `skipped`.
    Skip,
    /// Enqueue nothing because the stored schedule cannot run (its expression, time zone or
    /// job is invalid, e.g. written by hand or by an older version): the run is `invalid`, with
    /// the reason as its message.
    Invalid,
}

/// The enabled schedules that are due ([`crate::QueueExecutor::cron_schedule_due`]).
#[derive(Debug, Clone, Default)]
pub struct CronScheduleDueParams {
    /// Due means `next_run_at` at or before this. See the module docs: `None` is the
    /// database's clock, so that the time a schedule comes due and the times its rows record
    /// come from one clock.
    pub now: Option<DateTime<Utc>>,
}

/// What [`crate::QueueExecutor::cron_schedule_due`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct CronScheduleDue {
    /// The time the schedules were due at: the params' `now`, or the database's clock. Plan
    /// the occurrences (which one is the latest, whether it is late) from this time.
    pub now: DateTime<Utc>,
    /// The enabled schedules whose `next_run_at` is at or before `now`, by name.
    pub schedules: Vec<CronSchedule>,
}

/// List a schedule's runs, newest first.
#[derive(Debug, Clone, Default)]
pub struct CronRunListParams {
    /// Only this schedule's runs.
    pub schedule_name: Option<String>,
    /// At most this many rows.
    pub limit: i64,
}
