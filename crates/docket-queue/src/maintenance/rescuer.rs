//! The rescuer: running jobs whose worker stopped heartbeating go back to the queue.
//!
//! Each worker writes its own lease with every heartbeat (the runtime's
//! [`RuntimeConfig::lease`](crate::RuntimeConfig::lease)); the rescuer holds a worker dead
//! once that lease has lapsed, so it agrees with the `stuck_jobs` view and every other reader,
//! whatever this process's own settings. After taking back a dead worker's jobs it deletes the
//! worker's row, so that the worker lists show only processes that may still be running.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{
    Clock, Driver, Executor, JobRescueParams, JobRescueResult, Result, WorkerDeleteStaleParams,
};

use super::require;

/// Rescuer settings.
#[derive(Debug, Clone)]
pub struct RescuerConfig {
    /// How often the leader looks. Default 5 s: a dead worker's jobs run again at most
    /// its lease plus `interval` after its last heartbeat.
    pub interval: Duration,
    /// Jobs per statement. Default 1,000.
    pub batch: i64,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            batch: 1000,
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

    /// One pass: rescues every expired job, a batch at a time, then deletes the rows of dead
    /// workers that hold no job any more.
    pub async fn run_once(&self) -> Result<JobRescueResult> {
        let mut conn = self.driver.conn().await?;
        let mut total = JobRescueResult::default();
        loop {
            let r = conn
                .job_rescue(JobRescueParams {
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
