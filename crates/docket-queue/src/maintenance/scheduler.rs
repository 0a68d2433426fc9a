//! The cron scheduler: enqueues each occurrence of each schedule exactly once across nodes.
//!
//! Schedules live in the database (`cron_schedules`). An occurrence is enqueued by one
//! statement that advances the schedule only if its `next_run_at` is still the one this node
//! read, inserts the job (unique key `cron:<name>:<occurrence>`) and the `cron_runs` row
//! (unique per schedule and occurrence): a second node, or a second pass, finds nothing to do.
//!
//! **The database's clock decides.** Which schedules are due, and the time their occurrences
//! are planned from, come from the database (`now()` on PostgreSQL), the clock the rows
//! themselves are written with; a node whose own clock is off neither runs a schedule early nor
//! takes an on-time occurrence for a missed one.
//!
//! **Missed runs.** When the leader finds occurrences more than `late_tolerance` in the past
//! (everything was down), the schedule's [`MissedRunPolicy`] decides: `run_once` enqueues the
//! most recent missed occurrence once and records how many were missed; `skip` records the
//! most recent one as `skipped`. Either way the schedule resumes at its next future occurrence:
//! a week-long outage never floods the queue.
//!
//! **Nothing wedges a pass.** A stored schedule that cannot run (an expression, time zone or
//! job that no longer validates, written by hand or by an older version) gets an `invalid` run
//! with the reason and the pass goes on to the next schedule: an invalid job moves the schedule
//! to its next occurrence; an expression or time zone that does not parse parks it until the
//! schedule is saved again with a new one. The built-in schedules are checked on every pass and
//! written only when missing or different, so a database error at the moment a node became
//! leader cannot leave them unregistered.
//!
//! **Manual runs** ([`Scheduler::run_now`]) are refused while a run of the schedule is live
//! (its job queued, running or retrying), checked atomically by the driver.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_core::{
    Clock, CronRun, CronRunAction, CronRunEnqueueParams, CronSchedule, CronScheduleDueParams,
    CronScheduleSpec, CronScheduleUpsertParams, Error, JobInsertParams, MissedRunPolicy,
    QueueDriver, QueueExecutor, Result,
};

use super::{CLEANUP_KIND, chrono_dur, require};
use crate::cron::CronExpr;

/// Missed occurrences are counted up to this many.
const MISSED_COUNT_CAP: usize = 10_000;

/// Where a schedule that will never fire again waits: year 9999.
fn parked() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The name of the built-in cleanup schedule.
pub const CLEANUP_SCHEDULE: &str = "docket.cleanup";

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often the leader looks for due occurrences. Default 1 s.
    pub interval: Duration,
    /// An occurrence found later than this is "missed" and handled by the schedule's policy.
    /// Default 60 s.
    pub late_tolerance: Duration,
    /// The cleanup schedule's expression. Default `0 2 * * *` (02:00 daily).
    pub cleanup_expression: String,
    /// The cleanup schedule's time zone. Default `UTC`.
    pub cleanup_timezone: String,
    /// The queue the cleanup job is enqueued in; some worker must work it. Default `default`.
    pub cleanup_queue: String,
    /// More schedules the application registers at start (the pipeline's stuck-document
    /// sweep); created or updated like the cleanup schedule.
    pub builtin: Vec<CronScheduleSpec>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            late_tolerance: Duration::from_secs(60),
            cleanup_expression: "0 2 * * *".to_owned(),
            cleanup_timezone: "UTC".to_owned(),
            cleanup_queue: docket_core::DEFAULT_QUEUE.to_owned(),
            builtin: Vec::new(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerResult {
    /// Runs enqueued.
    pub enqueued: Vec<CronRun>,
    /// Occurrences recorded as skipped.
    pub skipped: usize,
    /// Occurrences recorded as `invalid`: the stored schedule could not run.
    pub invalid: Vec<CronRun>,
    /// Schedules whose occurrence failed with a database error (logged; the pass went on).
    pub failed: usize,
    /// Built-in schedules created or rewritten because they were missing or had been changed.
    pub ensured: Vec<String>,
    /// Run rows whose status was refreshed from their jobs.
    pub synced: u64,
}

/// What a manual run did ([`Scheduler::run_now`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ManualRun {
    /// The run, enqueued.
    Enqueued(CronRun),
    /// Refused: a run of the schedule is live (its job is queued, running or retrying).
    Live,
    /// There is no schedule of that name.
    NoSuchSchedule,
}

/// Enqueues cron occurrences.
#[derive(Debug)]
pub struct Scheduler<D> {
    driver: D,
    config: SchedulerConfig,
    /// The built-in schedules, the cleanup schedule last.
    builtin: Vec<CronScheduleSpec>,
    clock: Arc<dyn Clock>,
}

impl<D: QueueDriver> Scheduler<D> {
    /// Validates `config` (the cleanup expression included).
    pub fn new(driver: D, config: SchedulerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        require(
            !config.interval.is_zero(),
            "scheduler interval must be positive",
        )?;
        let mut builtin = config.builtin.clone();
        builtin.push(CronScheduleSpec {
            name: CLEANUP_SCHEDULE.to_owned(),
            expression: config.cleanup_expression.clone(),
            timezone: config.cleanup_timezone.clone(),
            job_type: CLEANUP_KIND.to_owned(),
            queue: config.cleanup_queue.clone(),
            payload: serde_json::json!({}),
            priority: 0,
            enabled: true,
            missed_policy: MissedRunPolicy::RunOnce,
        });
        for spec in &builtin {
            CronExpr::parse(&spec.name, &spec.expression, &spec.timezone)?;
        }
        Ok(Self {
            driver,
            config,
            builtin,
            clock,
        })
    }

    /// Its settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Creates or updates a schedule; refuses an invalid expression or time zone.
    pub async fn upsert(&self, spec: CronScheduleSpec) -> Result<CronSchedule> {
        let mut conn = self.driver.conn().await?;
        self.upsert_in(&mut conn, spec).await
    }

    async fn upsert_in(&self, conn: &mut D::Conn, spec: CronScheduleSpec) -> Result<CronSchedule> {
        let expr = CronExpr::parse(&spec.name, &spec.expression, &spec.timezone)?;
        let next = expr
            .next_after(self.clock.now())
            .ok_or_else(|| Error::Invalid(format!("schedule {:?} never fires", spec.name)))?;
        conn.cron_schedule_upsert(CronScheduleUpsertParams {
            spec,
            next_run_at: next,
        })
        .await
    }

    /// Creates the built-in schedules (job cleanup, and the application's) that are missing,
    /// and rewrites those that differ from their definition. Returns the names it wrote. Every
    /// pass calls it: one read when nothing changed.
    pub async fn ensure_builtin(&self) -> Result<Vec<String>> {
        let mut conn = self.driver.conn().await?;
        self.ensure_builtin_in(&mut conn).await
    }

    async fn ensure_builtin_in(&self, conn: &mut D::Conn) -> Result<Vec<String>> {
        let stored = conn.cron_schedule_list().await?;
        let mut written = Vec::new();
        for spec in &self.builtin {
            let current = stored.iter().find(|s| s.name == spec.name);
            if current.is_some_and(|s| spec_of(s) == *spec) {
                continue;
            }
            self.upsert_in(conn, spec.clone()).await?;
            if current.is_some() {
                tracing::warn!(schedule = %spec.name, "built-in cron schedule was changed; restored");
            } else {
                tracing::info!(schedule = %spec.name, "built-in cron schedule registered");
            }
            written.push(spec.name.clone());
        }
        Ok(written)
    }

    /// One pass: refreshes run statuses, ensures the built-in schedules, then enqueues every
    /// occurrence due by the database's clock (the clock's own time, for a test clock).
    ///
    /// Fails only when the database does; a schedule that cannot run is recorded as `invalid`
    /// and one whose occurrence fails otherwise is logged, and the others run.
    pub async fn run_once(&self) -> Result<SchedulerResult> {
        let mut conn = self.driver.conn().await?;
        let mut out = SchedulerResult {
            synced: conn.cron_run_sync().await?,
            ..Default::default()
        };
        out.ensured = match self.ensure_builtin_in(&mut conn).await {
            Ok(written) => written,
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => {
                // Tried again next pass; the schedules that exist still run.
                tracing::error!(error = %e, "could not ensure the built-in cron schedules");
                Vec::new()
            }
        };
        let due = conn
            .cron_schedule_due(CronScheduleDueParams {
                now: self.clock.now_for_db(),
            })
            .await?;
        for s in &due.schedules {
            let p = self.occurrence(s, due.now);
            let action = p.action.clone();
            match conn.cron_run_enqueue(p).await {
                Ok(None) => {} // another node got there first
                Ok(Some(run)) => match action {
                    CronRunAction::Enqueue(_) => {
                        tracing::info!(schedule = %s.name, scheduled_for = %run.scheduled_for, "cron occurrence enqueued");
                        out.enqueued.push(run);
                    }
                    CronRunAction::Skip => {
                        tracing::info!(schedule = %s.name, "missed occurrence skipped");
                        out.skipped += 1;
                    }
                    CronRunAction::Invalid => {
                        tracing::error!(
                            schedule = %s.name,
                            reason = run.message.as_deref().unwrap_or(""),
                            "cron schedule cannot run; recorded as invalid"
                        );
                        out.invalid.push(run);
                    }
                },
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => {
                    tracing::error!(schedule = %s.name, error = %e, "cron occurrence failed");
                    out.failed += 1;
                }
            }
        }
        Ok(out)
    }

    /// Enqueues one run of `name` now, outside its schedule, unless a run of it is live.
    pub async fn run_now(&self, name: &str) -> Result<ManualRun> {
        let mut conn = self.driver.conn().await?;
        let Some(s) = conn
            .cron_schedule_list()
            .await?
            .into_iter()
            .find(|s| s.name == name)
        else {
            return Ok(ManualRun::NoSuchSchedule);
        };
        let now = self.clock.now();
        let run = conn
            .cron_run_enqueue(CronRunEnqueueParams {
                schedule_name: s.name.clone(),
                scheduled_for: now,
                expected_next_run_at: None,
                next_run_at: s.next_run_at,
                action: CronRunAction::Enqueue(job_for(&s, now)),
                message: Some("manual".to_owned()),
            })
            .await?;
        Ok(run.map_or(ManualRun::Live, ManualRun::Enqueued))
    }

    /// What the due occurrence of `s` does at `now`: the plan of its expression, or an
    /// `invalid` run when the stored schedule cannot run.
    fn occurrence(&self, s: &CronSchedule, now: DateTime<Utc>) -> CronRunEnqueueParams {
        let invalid = |next_run_at, reason: String| CronRunEnqueueParams {
            schedule_name: s.name.clone(),
            scheduled_for: s.next_run_at,
            expected_next_run_at: Some(s.next_run_at),
            next_run_at,
            action: CronRunAction::Invalid,
            message: Some(reason),
        };
        let expr = match CronExpr::parse(&s.name, &s.expression, &s.timezone) {
            Ok(e) => e,
            // No next occurrence to move to: parked until saved with a new expression or time
            // zone (which recomputes next_run_at).
            Err(e) => return invalid(parked(), reason(e)),
        };
        let mut p = self.plan(s, &expr, now);
        if let CronRunAction::Enqueue(job) = &p.action
            && let Err(e) = job.validate()
        {
            // The schedule still has a timetable: this occurrence is recorded, the next one
            // is tried again (the schedule may be fixed by then).
            p.action = CronRunAction::Invalid;
            p.message = Some(format!("job: {}", reason(e)));
        }
        p
    }

    fn plan(&self, s: &CronSchedule, expr: &CronExpr, now: DateTime<Utc>) -> CronRunEnqueueParams {
        // The most recent occurrence at or before now; any between it and the due one were
        // missed (counted up to a cap, so a year-long outage costs no year of iteration).
        let latest = expr
            .latest_at_or_before(now)
            .filter(|l| *l >= s.next_run_at)
            .unwrap_or(s.next_run_at);
        let (between, more) = expr.between(s.next_run_at, latest, MISSED_COUNT_CAP);
        let missed = between.len();
        let missed_text = if more {
            format!("over {MISSED_COUNT_CAP}")
        } else {
            missed.to_string()
        };
        // An expression that never fires again parks the schedule far in the future.
        let next = expr.next_after(now.max(latest)).unwrap_or(parked());
        let late = now - latest > chrono_dur(self.config.late_tolerance);
        let enqueue = || CronRunAction::Enqueue(job_for(s, latest));
        let (action, message) = match (late, s.missed_policy) {
            (false, _) if missed == 0 => (enqueue(), None),
            (false, _) | (true, MissedRunPolicy::RunOnce) => (
                enqueue(),
                Some(format!(
                    "{missed_text} earlier occurrence(s) missed; ran once"
                )),
            ),
            (true, MissedRunPolicy::Skip) => (
                CronRunAction::Skip,
                Some(format!(
                    "missed by {}s; skipped by policy",
                    (now - latest).num_seconds()
                )),
            ),
        };
        CronRunEnqueueParams {
            schedule_name: s.name.clone(),
            scheduled_for: latest,
            expected_next_run_at: Some(s.next_run_at),
            next_run_at: next,
            action,
            message,
        }
    }
}

/// The definition of a stored schedule, to compare with a built-in one.
fn spec_of(s: &CronSchedule) -> CronScheduleSpec {
    CronScheduleSpec {
        name: s.name.clone(),
        expression: s.expression.clone(),
        timezone: s.timezone.clone(),
        job_type: s.job_type.clone(),
        queue: s.queue.clone(),
        payload: s.payload.clone(),
        priority: s.priority,
        enabled: s.enabled,
        missed_policy: s.missed_policy,
    }
}

/// Why a stored schedule cannot run, for its run's message.
fn reason(e: Error) -> String {
    match e {
        Error::InvalidCron { reason, .. } => reason,
        Error::Invalid(m) => m,
        e => e.to_string(),
    }
}

fn job_for(s: &CronSchedule, at: DateTime<Utc>) -> JobInsertParams {
    let mut j = JobInsertParams::new(s.job_type.clone(), s.payload.clone());
    j.queue = s.queue.clone();
    j.priority = s.priority;
    j.unique_key = Some(format!("cron:{}:{}", s.name, at.timestamp_micros()));
    j
}
