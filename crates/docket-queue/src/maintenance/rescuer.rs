//! The rescuer: running jobs whose worker stopped heartbeating go back to the queue.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{Clock, Driver, Executor, JobRescueParams, JobRescueResult, Result};

use super::{chrono_dur, require};

/// Rescuer settings.
#[derive(Debug, Clone)]
pub struct RescuerConfig {
    /// A worker silent for this long is dead, and its running jobs are rescued. Must exceed
    /// the workers' heartbeat interval with room for a slow database. Default 30 s.
    pub lease: Duration,
    /// How often the leader looks. Default 5 s: a dead worker's jobs run again at most
    /// `lease + interval` after its last heartbeat.
    pub interval: Duration,
    /// Jobs per statement. Default 1,000.
    pub batch: i64,
    /// Worker rows silent for this long (and holding no job) are deleted. Default 1 hour.
    pub forget_workers_after: Duration,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            interval: Duration::from_secs(5),
            batch: 1000,
            forget_workers_after: Duration::from_secs(3600),
        }
    }
}

/// Rescues jobs of dead workers.
#[derive(Debug)]
pub struct Rescuer<D> {
    driver: D,
    config: RescuerConfig,
    clock: Arc<dyn Clock>,
}

impl<D: Driver> Rescuer<D> {
    /// Validates `config`.
    pub fn new(driver: D, config: RescuerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        require(!config.lease.is_zero(), "rescuer lease must be positive")?;
        require(
            !config.interval.is_zero(),
            "rescuer interval must be positive",
        )?;
        require(config.batch > 0, "rescuer batch must be positive")?;
        Ok(Self {
            driver,
            config,
            clock,
        })
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
            let r = conn
                .job_rescue(JobRescueParams {
                    lease: chrono_dur(self.config.lease),
                    now: self.clock.now_for_db(),
                    limit: self.config.batch,
                })
                .await?;
            let n = r.requeued.len() + r.failed.len();
            if n > 0 {
                tracing::warn!(
                    requeued = r.requeued.len(),
                    failed = r.failed.len(),
                    "rescued jobs of workers whose lease expired"
                );
            }
            total.requeued.extend(r.requeued);
            total.failed.extend(r.failed);
            if (n as i64) < self.config.batch {
                break;
            }
        }
        let forgotten = conn
            .worker_delete_stale(
                self.clock
                    .now()
                    .checked_sub_signed(chrono_dur(self.config.forget_workers_after))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            )
            .await?;
        if forgotten > 0 {
            tracing::debug!(forgotten, "deleted rows of long-gone workers");
        }
        Ok(total)
    }
}
