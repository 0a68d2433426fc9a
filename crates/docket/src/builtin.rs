//! Job kinds built into the binary, for benchmarks, drills and smoke tests.

use std::time::Duration;

use docket_core::Driver;
use docket_queue::retry::Backoff;
use docket_queue::{JobArgs, JobContext, JobError, Worker, Workers};
use serde::{Deserialize, Serialize};

/// A job that does nothing, or sleeps, or fails on purpose.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoopArgs {
    /// Sleep this long first, milliseconds.
    #[serde(default)]
    pub sleep_ms: u64,
    /// Fail with this message: `permanent:` prefix for a permanent failure.
    #[serde(default)]
    pub fail: Option<String>,
}

impl JobArgs for NoopArgs {
    const KIND: &'static str = "docket.noop";
}

/// Works [`NoopArgs`].
#[derive(Debug, Clone, Copy)]
pub struct NoopWorker;

impl<D: Driver> Worker<D> for NoopWorker {
    type Args = NoopArgs;

    async fn work(&self, _ctx: JobContext<D>, args: NoopArgs) -> Result<(), JobError> {
        if args.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
        }
        match args.fail {
            Some(m) if m.starts_with("permanent:") => Err(JobError::permanent(m)),
            Some(m) => Err(JobError::retryable(m)),
            None => Ok(()),
        }
    }

    /// One second between attempts (and before a rescued job runs again): a job that does
    /// nothing waits on nothing, so drills and smoke tests measure the queue, not the wait.
    fn backoff(&self) -> Backoff {
        Backoff {
            steps: vec![Duration::from_secs(1)],
            jitter: 0.0,
        }
    }
}

/// The handlers every docket process registers.
pub fn workers<D: Driver>() -> Workers<D> {
    let mut w = Workers::new();
    w.register(NoopWorker);
    w
}
