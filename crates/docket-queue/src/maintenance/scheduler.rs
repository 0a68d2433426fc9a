//! The cron scheduler: enqueues each occurrence of each schedule exactly once across nodes.
//!
//! Schedules live in the database (`cron_schedules`). An occurrence is enqueued by one
//! statement that advances the schedule only if its `next_run_at` is still the one this node
//! read, inserts the job (unique key `cron:<name>:<occurrence>`) and the `cron_runs` row
//! (unique per schedule and occurrence): a second node, or a second pass, finds nothing to do.
//!
//! **Missed runs.** When the leader finds occurrences more than `late_tolerance` in the past
//! (everything was down), the schedule's [`MissedRunPolicy`] decides: `run_once` enqueues the
//! most recent missed occurrence once and records how many were missed; `skip` records the
//! most recent one as `skipped`. Either way the schedule resumes at its next future occurrence:
//! a week-long outage never floods the queue.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_core::{
    Clock, CronRun, CronRunAction, CronRunEnqueueParams, CronSchedule, CronScheduleSpec,
    CronScheduleUpsertParams, Driver, Error, Executor, JobInsertParams, MissedRunPolicy, Result,
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
    /// Run rows whose status was refreshed from their jobs.
    pub synced: u64,
}

/// Enqueues cron occurrences.
#[derive(Debug)]
pub struct Scheduler<D> {
    driver: D,
    config: SchedulerConfig,
    clock: Arc<dyn Clock>,
}

impl<D: Driver> Scheduler<D> {
    /// Validates `config` (the cleanup expression included).
    pub fn new(driver: D, config: SchedulerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        require(
            !config.interval.is_zero(),
            "scheduler interval must be positive",
        )?;
        CronExpr::parse(
            CLEANUP_SCHEDULE,
            &config.cleanup_expression,
            &config.cleanup_timezone,
        )?;
        for spec in &config.builtin {
            CronExpr::parse(&spec.name, &spec.expression, &spec.timezone)?;
        }
        Ok(Self {
            driver,
            config,
            clock,
        })
    }

    /// Its settings.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Creates or updates a schedule; refuses an invalid expression or time zone.
    pub async fn upsert(&self, spec: CronScheduleSpec) -> Result<CronSchedule> {
        let expr = CronExpr::parse(&spec.name, &spec.expression, &spec.timezone)?;
        let next = expr
            .next_after(self.clock.now())
            .ok_or_else(|| Error::Invalid(format!("schedule {:?} never fires", spec.name)))?;
        let mut conn = self.driver.conn().await?;
        conn.cron_schedule_upsert(CronScheduleUpsertParams {
            spec,
            next_run_at: next,
        })
        .await
    }

    /// Registers the built-in schedules (job cleanup, and the application's).
    pub async fn ensure_builtin(&self) -> Result<()> {
        for spec in &self.config.builtin {
            self.upsert(spec.clone()).await?;
        }
        self.upsert(CronScheduleSpec {
            name: CLEANUP_SCHEDULE.to_owned(),
            expression: self.config.cleanup_expression.clone(),
            timezone: self.config.cleanup_timezone.clone(),
            job_type: CLEANUP_KIND.to_owned(),
            queue: self.config.cleanup_queue.clone(),
            payload: serde_json::json!({}),
            priority: 0,
            enabled: true,
            missed_policy: MissedRunPolicy::RunOnce,
        })
        .await
        .map(|_| ())
    }

    /// One pass: refreshes run statuses, then enqueues every due occurrence.
    pub async fn run_once(&self) -> Result<SchedulerResult> {
        let now = self.clock.now();
        let mut conn = self.driver.conn().await?;
        let mut out = SchedulerResult {
            synced: conn.cron_run_sync().await?,
            ..Default::default()
        };
        for s in conn.cron_schedule_list().await? {
            if !s.enabled || s.next_run_at > now {
                continue;
            }
            let expr = match CronExpr::parse(&s.name, &s.expression, &s.timezone) {
                Ok(e) => e,
                Err(e) => {
                    // Stored by an older version or by hand: report, do not stop the others.
                    tracing::error!(schedule = %s.name, error = %e, "invalid stored schedule");
                    continue;
                }
            };
            let p = self.plan(&s, &expr, now);
            let skipped = p.job().is_none();
            match conn.cron_run_enqueue(p).await? {
                Some(run) if skipped => {
                    tracing::info!(schedule = %s.name, "missed occurrence skipped");
                    let _ = run;
                    out.skipped += 1;
                }
                Some(run) => {
                    tracing::info!(schedule = %s.name, scheduled_for = %run.scheduled_for, "cron occurrence enqueued");
                    out.enqueued.push(run);
                }
                None => {} // another node got there first
            }
        }
        Ok(out)
    }

    /// Enqueues one run of `name` now, outside its schedule.
    pub async fn run_now(&self, name: &str) -> Result<Option<CronRun>> {
        let mut conn = self.driver.conn().await?;
        let s = conn
            .cron_schedule_list()
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::Invalid(format!("no cron schedule named {name:?}")))?;
        let now = self.clock.now();
        conn.cron_run_enqueue(CronRunEnqueueParams {
            schedule_name: s.name.clone(),
            scheduled_for: now,
            expected_next_run_at: None,
            next_run_at: s.next_run_at,
            action: CronRunAction::Enqueue(job_for(&s, now)),
            message: Some("manual".to_owned()),
        })
        .await
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

fn job_for(s: &CronSchedule, at: DateTime<Utc>) -> JobInsertParams {
    let mut j = JobInsertParams::new(s.job_type.clone(), s.payload.clone());
    j.queue = s.queue.clone();
    j.priority = s.priority;
    j.unique_key = Some(format!("cron:{}:{}", s.name, at.timestamp_micros()));
    j
}
