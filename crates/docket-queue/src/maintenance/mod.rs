//! The leader's services.
//!
//! Every service has the same anatomy: a config struct whose `Default` documents each
//! default, a `new` that validates it and returns `Result`, and a `run_once` that does one
//! pass and returns what it did. The leader calls `run_once` on a timer ([`Maintenance::run`]);
//! tests call it directly with a [`ManualClock`](docket_core::ManualClock), and never sleep.

mod cleaner;
mod rescuer;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use docket_core::{Clock, QueueDriver, Result};
use tokio_util::sync::CancellationToken;

pub use cleaner::{CLEANUP_KIND, Cleaner, CleanerConfig, CleanupArgs, CleanupWorker};
pub use rescuer::{Rescuer, RescuerConfig};
pub use scheduler::{CLEANUP_SCHEDULE, ManualRun, Scheduler, SchedulerConfig, SchedulerResult};

/// Settings for everything the leader runs.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceConfig {
    /// The rescuer.
    pub rescuer: RescuerConfig,
    /// The cleaner.
    pub cleaner: CleanerConfig,
    /// The cron scheduler.
    pub scheduler: SchedulerConfig,
}

/// The leader's services, run together.
#[derive(Debug)]
pub struct Maintenance<D: QueueDriver> {
    /// Rescues jobs of dead workers.
    pub rescuer: Rescuer<D>,
    /// Enqueues cron occurrences.
    pub scheduler: Scheduler<D>,
}

impl<D: QueueDriver> Maintenance<D> {
    /// Builds every service, validating each config.
    pub fn new(driver: D, config: &MaintenanceConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            rescuer: Rescuer::new(driver.clone(), config.rescuer.clone(), clock.clone())?,
            scheduler: Scheduler::new(driver, config.scheduler.clone(), clock)?,
        })
    }

    /// Runs every service on its interval until `stop`. Errors are logged and retried on the
    /// next tick: a database outage pauses maintenance, it does not end it (the scheduler's
    /// passes register the built-in schedules too, so none is lost to an outage at the moment
    /// this node became leader).
    pub async fn run(&self, stop: CancellationToken) {
        let mut rescue = tokio::time::interval(self.rescuer.config().interval);
        let mut schedule = tokio::time::interval(self.scheduler.config().interval);
        for t in [&mut rescue, &mut schedule] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = rescue.tick() => {
                    if let Err(e) = self.rescuer.run_once().await {
                        tracing::warn!(error = %e, "rescuer pass failed");
                    }
                }
                _ = schedule.tick() => {
                    if let Err(e) = self.scheduler.run_once().await {
                        tracing::warn!(error = %e, "scheduler pass failed");
                    }
                }
            }
        }
    }
}

pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(crate) fn require(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(docket_core::Error::Invalid(what.to_owned()))
    }
}
