//! Typed jobs and the handlers that work them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docket_core::{
    CompletionOutcome, JobCompleteManyParams, JobCompletion, JobRow, QueueDriver, QueueExecutor,
};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::client::InsertOpts;
use crate::retry::Backoff;

/// A job's arguments: a stable kind string and a serde payload.
///
/// The kind is stored in every row and must never change once jobs of it exist: it is a
/// string constant, never derived from a type name.
pub trait JobArgs: Serialize + DeserializeOwned + Send + 'static {
    /// The job kind, e.g. `parse`.
    const KIND: &'static str;

    /// Default insert options for jobs of this kind (queue, priority, attempts, unique key).
    fn insert_opts(&self) -> InsertOpts {
        InsertOpts::default()
    }
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    message: String,
    permanent: bool,
    retry_after: Option<Duration>,
    snooze: bool,
}

impl JobError {
    /// A failure worth retrying (a timeout, an unavailable service).
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
            retry_after: None,
            snooze: false,
        }
    }

    /// A failure that will never succeed (a corrupt file): the job is dead-lettered at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: true,
            retry_after: None,
            snooze: false,
        }
    }

    /// Retry no sooner than `after` (a provider's `Retry-After`), instead of the backoff.
    pub fn retry_after(message: impl fmt::Display, after: Duration) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
            retry_after: Some(after),
            snooze: false,
        }
    }

    /// Run again after `after` **without spending an attempt**: for work held back by
    /// something outside the job (a provider that is down, an open circuit breaker), so a
    /// long outage does not dead-letter every job waiting on it. The attempt is recorded as
    /// `released` with the message.
    pub fn snooze(message: impl fmt::Display, after: Duration) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
            retry_after: Some(after),
            snooze: true,
        }
    }

    /// Whether this is a [`JobError::snooze`].
    pub fn is_snooze(&self) -> bool {
        self.snooze
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying is pointless.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The delay asked for, if any.
    pub fn retry_after_delay(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobError {
    /// Any error is retryable unless the handler says otherwise.
    fn from(e: E) -> Self {
        JobError::retryable(e)
    }
}

/// What a handler gets besides its arguments.
pub struct JobContext<D: QueueDriver> {
    job: Arc<JobRow>,
    driver: D,
    worker_id: Arc<str>,
    cancel: CancellationToken,
    finalised: Arc<AtomicBool>,
}

impl<D: QueueDriver> JobContext<D> {
    pub(crate) fn new(
        job: Arc<JobRow>,
        driver: D,
        worker_id: Arc<str>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            job,
            driver,
            worker_id,
            cancel,
            finalised: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn finalised_flag(&self) -> Arc<AtomicBool> {
        self.finalised.clone()
    }

    /// The job's row as claimed (its attempt number included).
    pub fn job(&self) -> &JobRow {
        &self.job
    }

    /// The storage driver, for the handler's own reads and transactions.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Cancelled when this attempt must stop: its claim ended elsewhere (an operator
    /// cancelled or retried the job, or the rescuer took it back), the worker could not renew
    /// its lease, or shutdown's grace period ran out. Long handlers should check it between
    /// steps (or `select!` on it); one that ignores it is dropped after the runtime's
    /// `cancel_grace`, and whatever it writes afterwards through [`JobContext::complete_in`]
    /// is refused.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Runs CPU-heavy or blocking work (parsing, inference) on the blocking thread pool, so
    /// that it cannot starve the heartbeat, the claim loop or other jobs. A panic in `f` is a
    /// retryable failure. Blocking code cannot be interrupted: after a timeout or a hard stop
    /// `f` runs on to its end, so it should be bounded on its own (a parser's size limit).
    pub async fn run_blocking<T, F>(&self, f: F) -> Result<T, JobError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| JobError::retryable(format!("blocking task failed: {e}")))
    }

    /// Completes this job inside `tx`, next to the handler's own writes (its outputs, the
    /// next stage's job), so that they commit together. Returns `false` when the job no
    /// longer runs under this attempt's claim (it was rescued, cancelled or retried): the
    /// handler should then roll back.
    ///
    /// If the handler returns `Ok` after this, the runtime does not complete the job again;
    /// if it returns an error (say, the commit failed), the attempt fails as usual.
    pub async fn complete_in(&self, tx: &mut D::Tx) -> docket_core::Result<bool> {
        let now = chrono::Utc::now();
        let done = tx
            .job_complete_many(JobCompleteManyParams {
                completions: vec![JobCompletion {
                    id: self.job.id,
                    claim_token: self.job.claim_token.unwrap_or_default(),
                    attempt: self.job.attempts,
                    worker_id: self.worker_id.to_string(),
                    started_at: self.job.started_at.unwrap_or(now),
                    finished_at: now,
                    outcome: CompletionOutcome::Completed,
                }],
            })
            .await?;
        let ok = !done.is_empty();
        self.finalised.store(ok, Ordering::Release);
        Ok(ok)
    }
}

/// A handler for one job kind. Implement `work`; the timeout and retry policy have defaults.
///
/// CPU-heavy work (parsing, inference) belongs on blocking threads
/// (`tokio::task::spawn_blocking`) so that it cannot starve the heartbeat and the claim loop.
pub trait Worker<D: QueueDriver>: Send + Sync + 'static {
    /// The arguments this handler takes.
    type Args: JobArgs;

    /// Does the work. `Ok` completes the job; an error retries it or dead-letters it.
    fn work(
        &self,
        ctx: JobContext<D>,
        args: Self::Args,
    ) -> impl Future<Output = Result<(), JobError>> + Send;

    /// An attempt running longer than this is cancelled and counts as a retryable failure.
    /// Default 5 minutes.
    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
    }

    /// The backoff between attempts. Default 60 s, 300 s, 900 s with ±10 % jitter.
    fn backoff(&self) -> Backoff {
        Backoff::default()
    }
}

/// A handler with its type erased, so that one registry holds every kind.
pub(crate) trait ErasedWorker<D: QueueDriver>: Send + Sync {
    fn work(
        &self,
        ctx: JobContext<D>,
        payload: serde_json::Value,
    ) -> BoxFuture<'static, Result<(), JobError>>;
    fn timeout(&self) -> Duration;
    fn backoff(&self) -> Backoff;
}

struct Erased<W>(Arc<W>);

impl<D: QueueDriver, W: Worker<D>> ErasedWorker<D> for Erased<W> {
    fn work(
        &self,
        ctx: JobContext<D>,
        payload: serde_json::Value,
    ) -> BoxFuture<'static, Result<(), JobError>> {
        let w = self.0.clone();
        Box::pin(async move {
            let args: W::Args = serde_json::from_value(payload).map_err(|e| {
                JobError::permanent(format!(
                    "payload does not deserialize as {}: {e}",
                    W::Args::KIND
                ))
            })?;
            w.work(ctx, args).await
        })
    }

    fn timeout(&self) -> Duration {
        self.0.timeout()
    }

    fn backoff(&self) -> Backoff {
        self.0.backoff()
    }
}

/// The handlers a runtime works, by kind.
pub struct Workers<D: QueueDriver> {
    map: HashMap<&'static str, Arc<dyn ErasedWorker<D>>>,
}

impl<D: QueueDriver> Default for Workers<D> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<D: QueueDriver> Workers<D> {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `worker` for its args' kind, replacing any earlier handler of that kind.
    pub fn register<W: Worker<D>>(&mut self, worker: W) -> &mut Self {
        self.map
            .insert(W::Args::KIND, Arc::new(Erased(Arc::new(worker))));
        self
    }

    /// Whether a handler for `kind` is registered.
    pub fn contains(&self, kind: &str) -> bool {
        self.map.contains_key(kind)
    }

    /// Each registered kind's backoff (the rescuer waits it too).
    pub fn backoffs(&self) -> HashMap<String, Backoff> {
        self.map
            .iter()
            .map(|(k, w)| ((*k).to_owned(), w.backoff()))
            .collect()
    }

    pub(crate) fn get(&self, kind: &str) -> Option<Arc<dyn ErasedWorker<D>>> {
        self.map.get(kind).cloned()
    }
}
