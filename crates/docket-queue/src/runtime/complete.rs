//! The completer: writes attempts' outcomes in batches, whatever has finished since its last
//! write, two statements in flight at most, retrying while the database is unavailable.

use std::sync::Arc;
use std::time::Duration;

use docket_core::{JobCompleteManyParams, JobCompletion, QueueDriver, QueueExecutor, Result};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::{ErrorBackoff, Inner};

pub(super) async fn write_completions<D: QueueDriver>(
    inner: &Inner<D>,
    completions: Vec<JobCompletion>,
) -> Result<usize> {
    let mut c = inner.driver.conn().await?;
    Ok(c.job_complete_many(JobCompleteManyParams { completions })
        .await?
        .len())
}

fn report_refused(sent: usize, applied: usize) {
    if applied < sent {
        tracing::info!(
            refused = sent - applied,
            "completions refused: jobs were rescued, cancelled or retried meanwhile"
        );
    }
}

/// Completion statements in flight at once. One writer was busy nearly all the time while
/// the database server idled between its statements (fast jobs, two cores): a second one
/// takes the next batch while the first is written. Each batch names other jobs, so the two
/// never wait on each other's rows.
const WRITERS: usize = 2;

/// Writes completions in batches: whatever has arrived since the last write, by
/// [`WRITERS`] writers that take turns at the channel.
pub(super) async fn complete<D: QueueDriver>(
    inner: Arc<Inner<D>>,
    rx: mpsc::UnboundedReceiver<JobCompletion>,
    stop: CancellationToken,
) {
    let rx = Mutex::new(rx);
    futures::future::join_all((0..WRITERS).map(|_| writer(&inner, &rx, &stop))).await;
}

async fn writer<D: QueueDriver>(
    inner: &Inner<D>,
    rx: &Mutex<mpsc::UnboundedReceiver<JobCompletion>>,
    stop: &CancellationToken,
) {
    let max = inner.config.complete_batch;
    let mut batch = Vec::with_capacity(max);
    loop {
        let stopping = {
            // One writer waits at the channel at a time; the other may be writing.
            let mut rx = rx.lock().await;
            let stopping = tokio::select! {
                biased;
                n = rx.recv_many(&mut batch, max) => n == 0,
                _ = stop.cancelled() => true,
            };
            if stopping {
                // Every job task has ended: take what is left.
                while let Ok(c) = rx.try_recv() {
                    batch.push(c);
                }
            }
            stopping
        };
        let mut backoff = ErrorBackoff::new();
        let mut tries = 0;
        while !batch.is_empty() {
            let take = batch.len().min(max);
            let chunk: Vec<_> = batch.drain(..take).collect();
            let n = chunk.len();
            match write_completions(inner, chunk.clone()).await {
                Ok(applied) => report_refused(n, applied),
                Err(e) if !e.is_unavailable() => {
                    // The database refused the statement itself: find the row it refuses
                    // rather than retry the whole batch forever.
                    tracing::warn!(error = %e, pending = n, "completion batch refused; writing one by one");
                    for c in chunk {
                        let id = c.id;
                        if let Err(e) = write_completions(inner, vec![c]).await {
                            tracing::error!(job_id = id, error = %e, "completion dropped; the rescuer will run the job again");
                        }
                    }
                }
                Err(e) => {
                    tries += 1;
                    // Keep trying while running: the jobs' leases stay ours as long as the
                    // heartbeat gets through. Once stopping, give up after a while: the
                    // rescuer will run those jobs again.
                    let stopping = stopping || stop.is_cancelled();
                    if stopping && tries > 20 {
                        tracing::error!(error = %e, lost = n, "could not record completions before exit; the jobs will run again");
                        continue;
                    }
                    tracing::warn!(error = %e, pending = n, "recording completions failed; retrying");
                    batch.splice(0..0, chunk);
                    tokio::time::sleep(backoff.next().min(Duration::from_millis(500))).await;
                }
            }
        }
        if stopping {
            return;
        }
    }
}
