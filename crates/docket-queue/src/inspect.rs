//! Read-only questions operators ask of the queue.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use docket_core::{Executor, JobListParams, JobRow, JobState, Result};

/// Running jobs whose worker has not heartbeated within `lease` (or has no worker row at
/// all): the jobs the rescuer will take back. Newest first, at most `limit`.
pub async fn stuck_jobs<E: Executor>(
    c: &mut E,
    lease: Duration,
    limit: i64,
) -> Result<Vec<JobRow>> {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let cutoff = Utc::now()
        .checked_sub_signed(lease)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    let alive: HashSet<String> = c
        .worker_list()
        .await?
        .into_iter()
        .filter(|w| w.heartbeat_at > cutoff)
        .map(|w| w.id)
        .collect();
    let mut running = c
        .job_list(JobListParams {
            states: vec![JobState::Running],
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    running.retain(|j| !j.locked_by.as_ref().is_some_and(|w| alive.contains(w)));
    running.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(running)
}
