//! The behaviours: one public async function each, generic over the backend.
//!
//! SQLite drivers keep a single connection: a behaviour never holds two executors of the same
//! driver at once (it drops one before taking the next, or uses
//! [`TestDb::connect_again`] for "another connection").

mod alerts;
mod cancelled;
mod chunks;
mod claim;
mod claims;
mod complete;
mod consistency;
mod cron;
mod cron_manual;
mod document_checks;
mod documents;
mod driver;
mod embedders;
mod generations;
mod insert;
mod read;
mod repair;
mod search_index;
mod sessions;
mod stuck;
mod text_search;
mod tx;
mod vector_search;
mod views;
mod workers;

pub use alerts::*;
pub use cancelled::*;
pub use chunks::*;
pub use claim::*;
pub use claims::*;
pub use complete::*;
pub use consistency::*;
pub use cron::*;
pub use cron_manual::*;
pub use document_checks::*;
pub use documents::*;
pub use driver::*;
pub use embedders::*;
pub use generations::*;
pub use insert::*;
pub use read::*;
pub use repair::*;
pub use search_index::*;
pub use sessions::*;
pub use stuck::*;
pub use text_search::*;
pub use tx::*;
pub use vector_search::*;
pub use views::*;
pub use workers::*;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use docket_core::{
    AttemptOutcome, CompletionOutcome, Executor, JobAttempt, JobCancelParams,
    JobCompleteManyParams, JobCompletion, JobGetAvailableParams, JobInsertManyParams,
    JobInsertParams, JobInsertResult, JobListParams, JobListStuckParams, JobRescue,
    JobRescueManyParams, JobRescueResult, JobRetryParams, JobRow, JobState, QueueDriver,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

/// A whole second near the wall clock: the base of a test's explicit times (every backend
/// stores microseconds, so whole seconds and milliseconds round-trip exactly).
pub(crate) fn base_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

pub(crate) fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

/// How long a test waits for a wake-up that should come.
pub(crate) const WAKE_TIMEOUT: StdDuration = StdDuration::from_secs(5);

pub(crate) type Conn<T> = <<T as TestDb>::D as QueueDriver>::Conn;

pub(crate) async fn conn<T: TestDb>(db: &T) -> Conn<T> {
    db.driver().conn().await.expect("driver.conn()")
}

pub(crate) fn job(job_type: &str, queue: &str, run_at: DateTime<Utc>) -> JobInsertParams {
    let mut j = JobInsertParams::new(job_type, json!({}));
    j.queue = queue.to_owned();
    j.run_at = Some(run_at);
    j
}

pub(crate) fn keyed(mut j: JobInsertParams, key: &str) -> JobInsertParams {
    j.unique_key = Some(key.to_owned());
    j
}

pub(crate) async fn insert<E: Executor>(
    c: &mut E,
    jobs: Vec<JobInsertParams>,
) -> Vec<JobInsertResult> {
    let n = jobs.len();
    let res = c
        .job_insert_many(JobInsertManyParams { jobs })
        .await
        .expect("job_insert_many");
    assert_eq!(res.len(), n, "job_insert_many: one result per input job");
    res
}

/// Inserts jobs that must all be new; their ids, in input order.
pub(crate) async fn insert_new<E: Executor>(c: &mut E, jobs: Vec<JobInsertParams>) -> Vec<i64> {
    insert(c, jobs)
        .await
        .iter()
        .map(|r| {
            assert!(!r.duplicate, "unexpected duplicate: {r:?}");
            r.id
        })
        .collect()
}

pub(crate) async fn add<E: Executor>(c: &mut E, j: JobInsertParams) -> i64 {
    insert_new(c, vec![j]).await[0]
}

pub(crate) async fn claim<E: Executor>(
    c: &mut E,
    queue: &str,
    worker: &str,
    limit: i32,
    now: DateTime<Utc>,
) -> Vec<JobRow> {
    c.job_get_available(JobGetAvailableParams {
        worker_id: worker.to_owned(),
        queue: queue.to_owned(),
        limit,
        now: Some(now),
    })
    .await
    .expect("job_get_available")
}

pub(crate) fn ids_of(jobs: &[JobRow]) -> Vec<i64> {
    jobs.iter().map(|j| j.id).collect()
}

pub(crate) fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

pub(crate) async fn get<E: Executor>(c: &mut E, id: i64) -> JobRow {
    c.job_get(id)
        .await
        .expect("job_get")
        .unwrap_or_else(|| panic!("job {id} not found"))
}

pub(crate) async fn gone<E: Executor>(c: &mut E, id: i64) -> bool {
    c.job_get(id).await.expect("job_get").is_none()
}

pub(crate) fn completion(
    id: i64,
    attempt: i32,
    worker: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: CompletionOutcome,
) -> JobCompletion {
    JobCompletion {
        id,
        // Filled in by `complete` from the claim (id, attempt, worker) names.
        claim_token: Uuid::nil(),
        attempt,
        worker_id: worker.to_owned(),
        started_at,
        finished_at,
        outcome,
    }
}

/// The token of the claim a worker holds on a job at an attempt, as a worker would have it
/// from its claim; a fresh random token (which no claim holds) when the job is not running
/// under that worker at that attempt.
pub(crate) async fn token_of<E: Executor>(c: &mut E, id: i64, attempt: i32, worker: &str) -> Uuid {
    match c.job_get(id).await.expect("job_get") {
        Some(j)
            if j.status == JobState::Running
                && j.attempts == attempt
                && j.locked_by.as_deref() == Some(worker) =>
        {
            j.claim_token.expect("a running job holds a claim token")
        }
        _ => Uuid::new_v4(),
    }
}

/// Applies completions; the ids applied, sorted. A completion without a token (made by
/// [`completion`]) presents the token of the claim its worker holds at its attempt.
pub(crate) async fn complete<E: Executor>(
    c: &mut E,
    mut completions: Vec<JobCompletion>,
) -> Vec<i64> {
    for x in &mut completions {
        if x.claim_token.is_nil() {
            x.claim_token = token_of(c, x.id, x.attempt, &x.worker_id).await;
        }
    }
    let ids = c
        .job_complete_many(JobCompleteManyParams { completions })
        .await
        .expect("job_complete_many");
    sorted(ids)
}

pub(crate) async fn attempts<E: Executor>(c: &mut E, id: i64) -> Vec<JobAttempt> {
    c.job_attempt_list(id).await.expect("job_attempt_list")
}

pub(crate) async fn list<E: Executor>(c: &mut E, params: JobListParams) -> Vec<i64> {
    ids_of(&c.job_list(params).await.expect("job_list"))
}

pub(crate) async fn all_jobs<E: Executor>(c: &mut E) -> Vec<JobRow> {
    c.job_list(JobListParams {
        limit: 1_000_000,
        ..Default::default()
    })
    .await
    .expect("job_list")
}

pub(crate) async fn retry_jobs<E: Executor>(c: &mut E, params: JobRetryParams) -> Vec<i64> {
    sorted(c.job_retry(params).await.expect("job_retry"))
}

pub(crate) async fn cancel_jobs<E: Executor>(
    c: &mut E,
    ids: Vec<i64>,
    now: DateTime<Utc>,
) -> Vec<i64> {
    sorted(
        c.job_cancel(JobCancelParams {
            ids,
            now: Some(now),
        })
        .await
        .expect("job_cancel"),
    )
}

pub(crate) fn assert_near(
    actual: DateTime<Utc>,
    expected: DateTime<Utc>,
    tolerance: Duration,
    what: &str,
) {
    let diff = (actual - expected).abs();
    assert!(
        diff <= tolerance,
        "{what}: {actual} is {diff} away from {expected} (tolerance {tolerance})"
    );
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn assert_attempt(
    a: &JobAttempt,
    job_id: i64,
    attempt: i32,
    worker: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: AttemptOutcome,
    error: Option<&str>,
) {
    assert_eq!(a.job_id, job_id, "attempt row's job_id: {a:?}");
    assert_eq!(a.attempt, attempt, "attempt row's attempt number: {a:?}");
    assert_eq!(a.worker_id, worker, "attempt row's worker: {a:?}");
    assert_eq!(a.started_at, started_at, "attempt row's started_at: {a:?}");
    assert_eq!(
        a.finished_at, finished_at,
        "attempt row's finished_at: {a:?}"
    );
    assert_eq!(a.outcome, outcome, "attempt row's outcome: {a:?}");
    assert_eq!(a.error.as_deref(), error, "attempt row's error: {a:?}");
    assert_eq!(
        a.duration_ms,
        (finished_at - started_at).num_milliseconds(),
        "attempt row's duration_ms: {a:?}"
    );
}

/// Lets spawned tasks (a driver's notifier) run for a while, without sleeping.
pub(crate) async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

/// Whether a (pinned, enabled) `Notified` has fired, without waiting.
pub(crate) async fn fired(n: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
    tokio::time::timeout(StdDuration::ZERO, n).await.is_ok()
}

/// Claims `id` (alone in its queue) at `at` and finishes it with `outcome` at `at + 1 s`.
pub(crate) async fn finish<E: Executor>(
    c: &mut E,
    queue: &str,
    at: DateTime<Utc>,
    outcome: CompletionOutcome,
) {
    let got = claim(c, queue, "w", 1, at).await;
    assert_eq!(got.len(), 1, "nothing to claim in {queue}");
    let id = got[0].id;
    let done = complete(
        c,
        vec![completion(
            id,
            got[0].attempts,
            "w",
            at,
            at + Duration::seconds(1),
            outcome,
        )],
    )
    .await;
    assert_eq!(done, vec![id]);
}

/// Ends a claimed job's attempt with `outcome`, presenting the claim's own token.
pub(crate) async fn finish_claimed<E: Executor>(
    c: &mut E,
    claimed: &JobRow,
    at: DateTime<Utc>,
    outcome: CompletionOutcome,
) {
    let done = c
        .job_complete_many(JobCompleteManyParams {
            completions: vec![by_token(claimed, at, outcome)],
        })
        .await
        .expect("job_complete_many");
    assert_eq!(done, vec![claimed.id], "the claim's own completion applies");
}

/// The completion a handler of `claimed` writes: its claim's token, attempt and worker.
pub(crate) fn by_token(
    claimed: &JobRow,
    at: DateTime<Utc>,
    outcome: CompletionOutcome,
) -> JobCompletion {
    JobCompletion {
        id: claimed.id,
        claim_token: claimed
            .claim_token
            .expect("a claimed job carries its claim token"),
        attempt: claimed.attempts,
        worker_id: claimed.locked_by.clone().unwrap_or_default(),
        started_at: claimed.started_at.unwrap_or(at),
        finished_at: at,
        outcome,
    }
}

pub(crate) fn failed(error: &str) -> CompletionOutcome {
    CompletionOutcome::Failed {
        error: error.to_owned(),
    }
}

/// A rescue pass as the engine makes one, deciding simply: every stuck job (its worker's own
/// lease lapsed at `now`, or its worker row gone) goes back to the queue due at `now`, or is
/// dead-lettered when it has no attempts left.
pub(crate) async fn rescue_expired<E: Executor>(
    c: &mut E,
    now: DateTime<Utc>,
    limit: i64,
) -> JobRescueResult {
    let expired: Vec<JobRow> = c
        .job_list_stuck(JobListStuckParams {
            now: Some(now),
            limit,
        })
        .await
        .expect("job_list_stuck")
        .into_iter()
        .map(|s| s.job)
        .collect();
    let rescues = expired
        .iter()
        .map(|j| JobRescue {
            id: j.id,
            claim_token: j.claim_token,
            attempt: j.attempts,
            worker_id: j.locked_by.clone().unwrap_or_default(),
            started_at: j.started_at.unwrap_or(now),
            status: if j.attempts >= j.max_attempts {
                JobState::Failed
            } else {
                JobState::Queued
            },
            run_at: now,
            error: format!(
                "lease expired: worker {} stopped heartbeating",
                j.locked_by.as_deref().unwrap_or("?")
            ),
            max_attempts: j.max_attempts,
        })
        .collect();
    c.job_rescue_many(JobRescueManyParams {
        rescues,
        now: Some(now),
    })
    .await
    .expect("job_rescue_many")
}
