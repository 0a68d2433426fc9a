//! The cleaner: deletes finished jobs past their retention.
//!
//! It runs as a job (`docket.cleanup`) enqueued by the built-in cron schedule (daily at
//! 02:00 UTC by default), so its runs appear in the cron history like any other.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{Clock, JobDeleteFinishedParams, QueueDriver, QueueExecutor, Result};
use serde::{Deserialize, Serialize};

use super::{chrono_dur, require};
use crate::{JobArgs, JobContext, JobError, Worker};

/// Cleaner settings.
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// Completed and cancelled jobs are kept this long. Default 7 days.
    pub completed_retention: Duration,
    /// Failed jobs are kept this long, for inspection. Default 30 days.
    pub failed_retention: Duration,
    /// Rows per statement, so that one pass never holds long locks. Default 10,000.
    pub batch: i64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            completed_retention: Duration::from_secs(7 * 86_400),
            failed_retention: Duration::from_secs(30 * 86_400),
            batch: 10_000,
        }
    }
}

/// Deletes old finished jobs.
#[derive(Debug)]
pub struct Cleaner<D> {
    driver: D,
    config: CleanerConfig,
    clock: Arc<dyn Clock>,
}

impl<D: QueueDriver> Cleaner<D> {
    /// Validates `config`.
    pub fn new(driver: D, config: CleanerConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        require(config.batch > 0, "cleaner batch must be positive")?;
        require(
            config.failed_retention >= config.completed_retention,
            "failed jobs must be kept at least as long as completed ones",
        )?;
        Ok(Self {
            driver,
            config,
            clock,
        })
    }

    /// One pass: deletes every expired row, a batch at a time. Returns how many.
    pub async fn run_once(&self) -> Result<u64> {
        let now = self.clock.now();
        let params = JobDeleteFinishedParams {
            completed_before: now - chrono_dur(self.config.completed_retention),
            failed_before: now - chrono_dur(self.config.failed_retention),
            limit: self.config.batch,
        };
        let mut conn = self.driver.conn().await?;
        let mut total = 0;
        loop {
            let n = conn.job_delete_finished(params.clone()).await?;
            total += n;
            if (n as i64) < self.config.batch {
                break;
            }
        }
        if total > 0 {
            tracing::info!(deleted = total, "deleted old finished jobs");
        }
        Ok(total)
    }
}

/// The job kind the cleanup schedule enqueues.
pub const CLEANUP_KIND: &str = "docket.cleanup";

/// Arguments of a cleanup job (none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CleanupArgs {}

impl JobArgs for CleanupArgs {
    const KIND: &'static str = CLEANUP_KIND;
}

/// Runs the [`Cleaner`] as a job.
#[derive(Debug, Clone)]
pub struct CleanupWorker {
    config: CleanerConfig,
    clock: Arc<dyn Clock>,
}

impl CleanupWorker {
    /// A worker that cleans with `config`.
    pub fn new(config: CleanerConfig, clock: Arc<dyn Clock>) -> Self {
        Self { config, clock }
    }
}

impl<D: QueueDriver> Worker<D> for CleanupWorker {
    type Args = CleanupArgs;

    async fn work(&self, ctx: JobContext<D>, _: CleanupArgs) -> Result<(), JobError> {
        let cleaner = Cleaner::new(
            ctx.driver().clone(),
            self.config.clone(),
            self.clock.clone(),
        )
        .map_err(JobError::permanent)?;
        cleaner.run_once().await.map_err(JobError::retryable)?;
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(3600)
    }
}
