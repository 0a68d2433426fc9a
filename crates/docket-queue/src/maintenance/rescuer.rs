//! The rescuer: running jobs whose worker stopped heartbeating go back to the queue.
//!
//! Each worker writes its own lease with every heartbeat (the runtime's
//! [`RuntimeConfig::lease`](crate::RuntimeConfig::lease)); the rescuer holds a worker dead
//! once that lease has lapsed, so it agrees with the `stuck_jobs` view and every other reader,
//! whatever this process's own settings. After taking back a dead worker's jobs it deletes the
//! worker's row, so that the worker lists show only processes that may still be running.
//!
//! The engine decides, the driver applies: the rescuer reads the stuck jobs
//! ([`QueueExecutor::job_list_stuck`]), decides each one's fate, and hands the decisions to
//! [`QueueExecutor::job_rescue_many`], which applies each only while the job still runs under the
//! dead claim (a completion that lands first wins). A rescued job waits its kind's backoff, as
//! after a failure, and a job whose worker died `max_rescues` times in a row is dead-lettered
//! saying so: a job that kills its process (out of memory, say) must not crash-loop across
//! every worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_core::{
    Clock, JobListStuckParams, JobRescue, JobRescueManyParams, JobRescueResult, JobRow, JobState,
    QueueDriver, QueueExecutor, Result, WorkerDeleteStaleParams,
};

use super::{chrono_dur, require};
use crate::retry::Backoff;

/// Rescuer settings.
#[derive(Debug, Clone)]
pub struct RescuerConfig {
    /// How often the leader looks. Default 5 s: a dead worker's jobs run again (after their
    /// backoff) at most `lease + interval` after its last heartbeat.
    pub interval: Duration,
    /// Jobs per statement. Default 1,000.
    pub batch: i64,
    /// A job whose worker died this many times in a row while running it is dead-lettered
    /// instead of being handed to the next worker. Default 3.
    pub max_rescues: i32,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            batch: 1000,
            max_rescues: 3,
        }
    }
}

/// Rescues jobs of dead workers.
#[derive(Debug)]
pub struct Rescuer<D> {
    driver: D,
    config: RescuerConfig,
    clock: Arc<dyn Clock>,
    backoffs: HashMap<String, Backoff>,
}

impl<D: QueueDriver> Rescuer<D> {
    /// Validates `config`.
    pub fn new(driver: D, config: RescuerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        require(
            !config.interval.is_zero(),
            "rescuer interval must be positive",
        )?;
        require(config.batch > 0, "rescuer batch must be positive")?;
        require(config.max_rescues >= 1, "max_rescues must be at least 1")?;
        Ok(Self {
            driver,
            config,
            clock,
            backoffs: HashMap::new(),
        })
    }

    /// The backoff of each job kind (kinds not listed use [`Backoff::default`]).
    pub fn set_backoffs(&mut self, backoffs: HashMap<String, Backoff>) {
        self.backoffs = backoffs;
    }

    /// What becomes of one expired claim.
    fn decide(&self, job: &JobRow, now: DateTime<Utc>) -> JobRescue {
        let worker = job.locked_by.clone().unwrap_or_default();
        let rescues = job.rescues.saturating_add(1);
        let lapsed = format!(
            "lease expired: worker {worker} stopped heartbeating (died or lost the database)"
        );
        let (status, error) = if rescues >= self.config.max_rescues {
            (
                JobState::Failed,
                format!(
                    "{lapsed}; its workers died {rescues} times in a row running this job \
                     (max_rescues {}): the job may be what kills them",
                    self.config.max_rescues
                ),
            )
        } else {
            (JobState::Queued, lapsed)
        };
        let delay = self
            .backoffs
            .get(&job.job_type)
            .cloned()
            .unwrap_or_default()
            .delay(job.attempts);
        JobRescue {
            id: job.id,
            claim_token: job.claim_token,
            attempt: job.attempts,
            worker_id: worker,
            started_at: job.started_at.or(job.locked_at).unwrap_or(now),
            status,
            run_at: now
                .checked_add_signed(chrono_dur(delay))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            error,
            // The attempt that died with its worker is given back: dying is not failing.
            max_attempts: match status {
                JobState::Queued => job.max_attempts.saturating_add(1),
                _ => job.max_attempts,
            },
        }
    }

    /// Its settings.
    pub fn config(&self) -> &RescuerConfig {
        &self.config
    }

    /// One pass: rescues every expired job, a batch at a time.
    pub async fn run_once(&self) -> Result<JobRescueResult> {
        let mut conn = self.driver.conn().await?;
        let mut total = JobRescueResult::default();
        loop {
            let expired: Vec<JobRow> = conn
                .job_list_stuck(JobListStuckParams {
                    now: self.clock.now_for_db(),
                    limit: self.config.batch,
                })
                .await?
                .into_iter()
                .map(|s| s.job)
                .collect();
            if expired.is_empty() {
                break;
            }
            let now = self.clock.now();
            let r = conn
                .job_rescue_many(JobRescueManyParams {
                    rescues: expired.iter().map(|j| self.decide(j, now)).collect(),
                    now: self.clock.now_for_db(),
                })
                .await?;
            let n = r.requeued.len() + r.failed.len();
            // A worker that is alive after all (a long pause, a partition) hears that its
            // claims are gone and stops their handlers.
            crate::admin::announce(&self.driver, &[&r.requeued[..], &r.failed[..]].concat());
            if n > 0 {
                tracing::warn!(
                    requeued = r.requeued.len(),
                    failed = r.failed.len(),
                    "rescued jobs of workers whose lease expired"
                );
            }
            total.requeued.extend(r.requeued);
            total.failed.extend(r.failed);
            // Nothing applied: every claim ended meanwhile; the next pass looks again.
            if n == 0 || (expired.len() as i64) < self.config.batch {
                break;
            }
        }
        let forgotten = conn
            .worker_delete_stale(WorkerDeleteStaleParams {
                now: self.clock.now_for_db(),
            })
            .await?;
        if forgotten > 0 {
            tracing::info!(forgotten, "deleted rows of dead workers");
        }
        Ok(total)
    }
}
