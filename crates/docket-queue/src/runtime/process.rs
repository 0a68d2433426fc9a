//! Process now: claims due jobs and runs them on request (the original system's "process a
//! batch now" endpoint), on the runtime's own task tracker.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use docket_core::{
    CompletionOutcome, Error, JobGetAvailableParams, JobRow, QueueDriver, QueueExecutor, Result,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{Inner, execute_labelled, release, write_completions};

/// What became of one job run by [`Processor::process`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Processed {
    /// The job.
    pub id: i64,
    /// Its kind.
    pub job_type: String,
    /// Its queue.
    pub queue: String,
    /// `completed`, `retry`, `failed`, `snoozed`, `released` or `cancelled` (its claim ended
    /// while it ran).
    pub outcome: &'static str,
    /// The attempt's error, when it failed.
    pub error: Option<String>,
}

type ProcessFn = dyn Fn(Option<String>, usize, Duration) -> BoxFuture<'static, Result<Vec<Processed>>>
    + Send
    + Sync;

/// Claims due jobs and runs them now, with the runtime's handlers and worker id (so its
/// heartbeat keeps their lease), writing each attempt like any other: the original system's
/// "process a batch now" endpoint. Cheap to clone.
///
/// Each job runs on the runtime's own task tracker, so a caller that goes away (an HTTP
/// client that disconnects) neither cuts a running job short nor strands the rest: the jobs
/// it claimed but had not started go back to the queue at once, uncounted.
#[derive(Clone)]
pub struct Processor(Arc<ProcessFn>);

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Processor")
    }
}

/// How long one [`Processor::process`] call may keep claiming. 25 s: an HTTP request's
/// answer comes well within a minute.
pub const PROCESS_BUDGET: Duration = Duration::from_secs(25);

impl Processor {
    pub(super) fn of<D: QueueDriver>(inner: Arc<Inner<D>>, stop: CancellationToken) -> Self {
        Self(Arc::new(move |queue, limit, budget| {
            let inner = inner.clone();
            let stop = stop.clone();
            Box::pin(async move { process_now(&inner, &stop, queue, limit, budget).await })
        }))
    }

    /// Claims due jobs, from `queue` or from each queue the runtime works in turn, runs them
    /// one after another, and claims again while jobs keep coming (a stage enqueues the next,
    /// so one call follows a document's chain), up to `limit` jobs and within
    /// [`PROCESS_BUDGET`]; reports each outcome.
    pub async fn process(&self, queue: Option<String>, limit: usize) -> Result<Vec<Processed>> {
        self.process_within(queue, limit, PROCESS_BUDGET).await
    }

    /// [`Processor::process`] within `budget`: no job starts after it runs out.
    pub async fn process_within(
        &self,
        queue: Option<String>,
        limit: usize,
        budget: Duration,
    ) -> Result<Vec<Processed>> {
        (self.0)(queue, limit, budget).await
    }
}

/// Claimed jobs not started yet: whatever is left when this is dropped (the caller went away,
/// the budget ran out) goes back to the queue, uncounted.
struct Unstarted<D: QueueDriver> {
    inner: Arc<Inner<D>>,
    jobs: VecDeque<JobRow>,
}

impl<D: QueueDriver> Drop for Unstarted<D> {
    fn drop(&mut self) {
        release(&self.inner, self.jobs.drain(..));
    }
}

async fn process_now<D: QueueDriver>(
    inner: &Arc<Inner<D>>,
    stop: &CancellationToken,
    queue: Option<String>,
    limit: usize,
    budget: Duration,
) -> Result<Vec<Processed>> {
    if stop.is_cancelled() {
        return Err(Error::Unavailable("the runtime is shutting down".into()));
    }
    let deadline = std::time::Instant::now() + budget;
    let queues: Vec<String> = match queue {
        Some(q) => vec![q],
        None => inner.config.queues.iter().map(|q| q.name.clone()).collect(),
    };
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for queue in &queues {
            let want = limit.saturating_sub(out.len());
            if want == 0 || std::time::Instant::now() >= deadline || stop.is_cancelled() {
                break;
            }
            let jobs = {
                let mut c = inner.driver.conn().await?;
                c.job_get_available(JobGetAvailableParams {
                    worker_id: inner.worker_id.to_string(),
                    queue: queue.clone(),
                    limit: i32::try_from(want).unwrap_or(i32::MAX),
                    now: inner.clock.now_for_db(),
                })
                .await?
            };
            let mut unstarted = Unstarted {
                inner: inner.clone(),
                jobs: jobs.into(),
            };
            while std::time::Instant::now() < deadline && !stop.is_cancelled() {
                let Some(job) = unstarted.jobs.pop_front() else {
                    break;
                };
                let inner2 = inner.clone();
                let run = inner.jobs.spawn(async move { run_one(&inner2, job).await });
                out.push(
                    run.await.map_err(|e| {
                        Error::Unavailable(format!("job task failed: {e}").into())
                    })??,
                );
            }
        }
        if out.len() == before
            || out.len() >= limit
            || std::time::Instant::now() >= deadline
            || stop.is_cancelled()
        {
            return Ok(out);
        }
    }
}

/// Runs one claimed job to its end and writes its attempt (handing the write to the completer,
/// which retries, when the database refuses it now).
async fn run_one<D: QueueDriver>(inner: &Arc<Inner<D>>, job: JobRow) -> Result<Processed> {
    let (id, job_type, queue) = (job.id, job.job_type.clone(), job.queue.clone());
    let (completion, label) = execute_labelled(inner, job).await;
    let error = completion.as_ref().and_then(|c| match &c.outcome {
        CompletionOutcome::Retry { error, .. } | CompletionOutcome::Failed { error } => {
            Some(error.clone())
        }
        CompletionOutcome::Snoozed { reason, .. } => Some(reason.clone()),
        CompletionOutcome::Completed | CompletionOutcome::Released => None,
    });
    if let Some(c) = completion
        && let Err(e) = write_completions(inner, vec![c.clone()]).await
    {
        let _ = inner.completions.send(c);
        return Err(e);
    }
    Ok(Processed {
        id,
        job_type,
        queue,
        outcome: label,
        error,
    })
}
