//! The behaviours: one public async function each, generic over the backend.
//!
//! SQLite drivers keep a single connection: a behaviour never holds two executors of the same
//! driver at once (it drops one before taking the next, or uses
//! [`TestDb::connect_again`] for "another connection").

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use docket_core::{
    AttemptOutcome, CompletionOutcome, CronRun, CronRunEnqueueParams, CronRunListParams,
    CronSchedule, CronScheduleUpsertParams, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE, Driver, Error,
    Executor, JobAttempt, JobCancelParams, JobCompleteManyParams, JobCompletion,
    JobDeleteFinishedParams, JobGetAvailableParams, JobInsertManyParams, JobInsertParams,
    JobInsertResult, JobListParams, JobRescueParams, JobRetryParams, JobRow, JobState,
    LeaderElectParams, MAX_PAYLOAD_BYTES, MissedRunPolicy, QueueRow, QueueSetPausedParams,
    Transaction, WorkerHeartbeatParams,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::TestDb;

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// A whole second near the wall clock: the base of a test's explicit times (every backend
/// stores microseconds, so whole seconds and milliseconds round-trip exactly).
fn base_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

/// How long a test waits for a wake-up that should come.
const WAKE_TIMEOUT: StdDuration = StdDuration::from_secs(5);

type Conn<T> = <<T as TestDb>::D as Driver>::Conn;

async fn conn<T: TestDb>(db: &T) -> Conn<T> {
    db.driver().conn().await.expect("driver.conn()")
}

fn job(job_type: &str, queue: &str, run_at: DateTime<Utc>) -> JobInsertParams {
    let mut j = JobInsertParams::new(job_type, json!({}));
    j.queue = queue.to_owned();
    j.run_at = Some(run_at);
    j
}

fn keyed(mut j: JobInsertParams, key: &str) -> JobInsertParams {
    j.unique_key = Some(key.to_owned());
    j
}

async fn insert<E: Executor>(c: &mut E, jobs: Vec<JobInsertParams>) -> Vec<JobInsertResult> {
    let n = jobs.len();
    let res = c
        .job_insert_many(JobInsertManyParams { jobs })
        .await
        .expect("job_insert_many");
    assert_eq!(res.len(), n, "job_insert_many: one result per input job");
    res
}

/// Inserts jobs that must all be new; their ids, in input order.
async fn insert_new<E: Executor>(c: &mut E, jobs: Vec<JobInsertParams>) -> Vec<i64> {
    insert(c, jobs)
        .await
        .iter()
        .map(|r| {
            assert!(!r.duplicate, "unexpected duplicate: {r:?}");
            r.id
        })
        .collect()
}

async fn add<E: Executor>(c: &mut E, j: JobInsertParams) -> i64 {
    insert_new(c, vec![j]).await[0]
}

async fn claim<E: Executor>(
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

fn ids_of(jobs: &[JobRow]) -> Vec<i64> {
    jobs.iter().map(|j| j.id).collect()
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v
}

async fn get<E: Executor>(c: &mut E, id: i64) -> JobRow {
    c.job_get(id)
        .await
        .expect("job_get")
        .unwrap_or_else(|| panic!("job {id} not found"))
}

async fn gone<E: Executor>(c: &mut E, id: i64) -> bool {
    c.job_get(id).await.expect("job_get").is_none()
}

fn completion(
    id: i64,
    attempt: i32,
    worker: &str,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: CompletionOutcome,
) -> JobCompletion {
    JobCompletion {
        id,
        attempt,
        worker_id: worker.to_owned(),
        started_at,
        finished_at,
        outcome,
    }
}

/// Applies completions; the ids applied, sorted.
async fn complete<E: Executor>(c: &mut E, completions: Vec<JobCompletion>) -> Vec<i64> {
    let ids = c
        .job_complete_many(JobCompleteManyParams { completions })
        .await
        .expect("job_complete_many");
    sorted(ids)
}

async fn attempts<E: Executor>(c: &mut E, id: i64) -> Vec<JobAttempt> {
    c.job_attempt_list(id).await.expect("job_attempt_list")
}

async fn list<E: Executor>(c: &mut E, params: JobListParams) -> Vec<i64> {
    ids_of(&c.job_list(params).await.expect("job_list"))
}

async fn all_jobs<E: Executor>(c: &mut E) -> Vec<JobRow> {
    c.job_list(JobListParams {
        limit: 1_000_000,
        ..Default::default()
    })
    .await
    .expect("job_list")
}

async fn retry_jobs<E: Executor>(c: &mut E, params: JobRetryParams) -> Vec<i64> {
    sorted(c.job_retry(params).await.expect("job_retry"))
}

async fn cancel_jobs<E: Executor>(c: &mut E, ids: Vec<i64>, now: DateTime<Utc>) -> Vec<i64> {
    sorted(
        c.job_cancel(JobCancelParams {
            ids,
            now: Some(now),
        })
        .await
        .expect("job_cancel"),
    )
}

fn assert_near(actual: DateTime<Utc>, expected: DateTime<Utc>, tolerance: Duration, what: &str) {
    let diff = (actual - expected).abs();
    assert!(
        diff <= tolerance,
        "{what}: {actual} is {diff} away from {expected} (tolerance {tolerance})"
    );
}

#[allow(clippy::too_many_arguments)]
fn assert_attempt(
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
async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

/// Whether a (pinned, enabled) `Notified` has fired, without waiting.
async fn fired(n: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
    tokio::time::timeout(StdDuration::ZERO, n).await.is_ok()
}

// ------------------------------------------------------------------------------------------
// The driver itself
// ------------------------------------------------------------------------------------------

/// `name`, `ping`, idempotent `migrate`; a fresh database is empty; empty calls are no-ops.
pub async fn driver_basics<T: TestDb>(db: &T) {
    let d = db.driver();
    assert_eq!(d.name(), db.backend(), "Driver::name");
    d.ping().await.expect("ping");
    d.migrate()
        .await
        .expect("migrate a second time (must be idempotent)");

    let mut c = conn(db).await;
    assert!(
        all_jobs(&mut c).await.is_empty(),
        "a fresh database has jobs"
    );
    assert!(c.queue_list().await.expect("queue_list").is_empty());
    assert!(c.worker_list().await.expect("worker_list").is_empty());
    assert!(
        c.cron_schedule_list()
            .await
            .expect("cron_schedule_list")
            .is_empty()
    );
    assert!(c.leader_get(None).await.expect("leader_get").is_none());
    assert!(c.job_stats().await.expect("job_stats").is_empty());
    assert!(insert(&mut c, vec![]).await.is_empty());
    assert!(complete(&mut c, vec![]).await.is_empty());
    assert!(cancel_jobs(&mut c, vec![], base_time()).await.is_empty());
    assert!(
        claim(&mut c, DEFAULT_QUEUE, "w", 10, base_time())
            .await
            .is_empty()
    );
}

// ------------------------------------------------------------------------------------------
// Insert
// ------------------------------------------------------------------------------------------

/// One job: every field round-trips through `job_get`; defaults apply when unset.
pub async fn insert_one<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let doc = Uuid::new_v4();
    let run_at = t0 + Duration::minutes(5) + Duration::microseconds(123_456);
    let payload = json!({
        "document_id": doc.to_string(),
        "pages": [1, 2, 3],
        "options": {"ocr": true, "language": "fr", "ratio": 0.5},
        "title": "Façade – naïve ✓ 文書",
        "nothing": null,
    });
    let params = JobInsertParams {
        job_type: "parse".into(),
        queue: "documents".into(),
        priority: 7,
        payload: payload.clone(),
        max_attempts: 9,
        run_at: Some(run_at),
        unique_key: Some("parse:doc-1".into()),
        document_id: Some(doc),
    };
    let before = Utc::now();
    let res = insert(&mut c, vec![params]).await;
    let after = Utc::now();
    assert!(!res[0].duplicate, "{res:?}");
    assert!(res[0].id > 0, "ids are positive: {res:?}");

    let j = get(&mut c, res[0].id).await;
    assert_eq!(j.id, res[0].id);
    assert_eq!(j.job_type, "parse");
    assert_eq!(j.queue, "documents");
    assert_eq!(j.status, JobState::Queued);
    assert_eq!(j.priority, 7);
    assert_eq!(j.payload, payload);
    assert_eq!(j.attempts, 0);
    assert_eq!(j.max_attempts, 9);
    assert_eq!(j.run_at, run_at, "run_at keeps its microseconds");
    assert_eq!(j.locked_by, None);
    assert_eq!(j.locked_at, None);
    assert_eq!(j.last_error, None);
    assert_eq!(j.unique_key.as_deref(), Some("parse:doc-1"));
    assert_eq!(j.document_id, Some(doc));
    assert_eq!(j.started_at, None);
    assert_eq!(j.completed_at, None);
    let mid = before + (after - before) / 2;
    assert_near(j.created_at, mid, Duration::seconds(5), "created_at");
    assert_near(j.updated_at, mid, Duration::seconds(5), "updated_at");

    // Defaults: the default queue, priority 0, due now.
    let before = Utc::now();
    let id = add(&mut c, JobInsertParams::new("notify", json!({"to": "ops"}))).await;
    let after = Utc::now();
    let j = get(&mut c, id).await;
    assert!(id > res[0].id, "ids increase");
    assert_eq!(j.queue, DEFAULT_QUEUE);
    assert_eq!(j.priority, 0);
    assert_eq!(j.max_attempts, DEFAULT_MAX_ATTEMPTS);
    assert_eq!(j.payload, json!({"to": "ops"}));
    assert_eq!(j.unique_key, None);
    assert_eq!(j.document_id, None);
    assert_eq!(j.status, JobState::Queued);
    let mid = before + (after - before) / 2;
    assert_near(j.run_at, mid, Duration::seconds(5), "run_at of None (now)");

    assert!(gone(&mut c, id + 1000).await, "job_get of an unknown id");
}

/// Many jobs in one call: 1,000 of them, results in input order, ids increasing.
pub async fn insert_many<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let jobs: Vec<JobInsertParams> = (0..1000)
        .map(|i| {
            let mut j = job("bulk", "bulk", t0 + Duration::seconds(i));
            j.payload = json!({ "i": i });
            j.priority = (i % 11) as i16;
            if i % 3 == 0 {
                j.unique_key = Some(format!("bulk-{i}"));
            }
            j
        })
        .collect();
    let ids = insert_new(&mut c, jobs).await;
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids increase in input order"
    );

    let by_id: BTreeMap<i64, JobRow> = all_jobs(&mut c)
        .await
        .into_iter()
        .map(|j| (j.id, j))
        .collect();
    assert_eq!(by_id.len(), 1000, "1,000 rows stored");
    for (i, id) in ids.iter().enumerate() {
        let j = &by_id[id];
        let i = i as i64;
        assert_eq!(j.payload, json!({ "i": i }), "job {id} is input #{i}");
        assert_eq!(j.priority, (i % 11) as i16);
        assert_eq!(j.run_at, t0 + Duration::seconds(i));
        let key = (i % 3 == 0).then(|| format!("bulk-{i}"));
        assert_eq!(j.unique_key, key);
    }
}

/// Invalid jobs are refused with the right error, and nothing of the batch is inserted.
pub async fn insert_validation<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let valid = job("ok", "v", t0);

    let mut empty_type = valid.clone();
    empty_type.job_type = String::new();
    let mut prio_high = valid.clone();
    prio_high.priority = 11;
    let mut prio_low = valid.clone();
    prio_low.priority = -1;
    let mut no_attempts = valid.clone();
    no_attempts.max_attempts = 0;
    let mut empty_queue = valid.clone();
    empty_queue.queue = String::new();
    let mut star_queue = valid.clone();
    star_queue.queue = "*".into();
    let invalid = [
        ("empty job_type", empty_type),
        ("priority 11", prio_high),
        ("priority -1", prio_low),
        ("max_attempts 0", no_attempts),
        ("empty queue", empty_queue),
        ("queue '*'", star_queue),
    ];
    for (what, bad) in invalid {
        for batch in [vec![bad.clone()], vec![valid.clone(), bad.clone()]] {
            let n = batch.len();
            match c.job_insert_many(JobInsertManyParams { jobs: batch }).await {
                Err(Error::Invalid(_)) => {}
                other => panic!("{what} (batch of {n}): expected Error::Invalid, got {other:?}"),
            }
        }
    }

    // A JSON string of MAX_PAYLOAD_BYTES characters encodes to MAX_PAYLOAD_BYTES + 2 bytes.
    let mut too_large = valid.clone();
    too_large.payload = json!("x".repeat(MAX_PAYLOAD_BYTES));
    for batch in [
        vec![too_large.clone()],
        vec![valid.clone(), too_large.clone()],
    ] {
        match c.job_insert_many(JobInsertManyParams { jobs: batch }).await {
            Err(Error::PayloadTooLarge { size, max }) => {
                assert_eq!(size, MAX_PAYLOAD_BYTES + 2, "PayloadTooLarge.size");
                assert_eq!(max, MAX_PAYLOAD_BYTES, "PayloadTooLarge.max");
            }
            other => panic!("oversized payload: expected PayloadTooLarge, got {other:?}"),
        }
    }
    assert!(
        all_jobs(&mut c).await.is_empty(),
        "a refused batch inserted jobs"
    );

    // The limit itself is accepted.
    let mut at_limit = valid.clone();
    at_limit.payload = json!("y".repeat(MAX_PAYLOAD_BYTES - 2));
    let id = add(&mut c, at_limit.clone()).await;
    assert_eq!(get(&mut c, id).await.payload, at_limit.payload);
    assert_eq!(all_jobs(&mut c).await.len(), 1);
}

/// Unique keys: one live job per key; duplicates report the holder, within a batch too; a
/// finished holder frees the key.
pub async fn unique_keys<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let first = add(&mut c, keyed(job("u", "uq", t0), "k")).await;

    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res,
        vec![JobInsertResult {
            id: first,
            duplicate: true
        }],
        "a second live job with the key"
    );
    assert_eq!(all_jobs(&mut c).await.len(), 1, "the duplicate was stored");

    // Within one batch, and mixed with jobs without a key.
    let res = insert(
        &mut c,
        vec![
            keyed(job("u", "other", t0), "k2"),
            keyed(job("u", "other", t0), "k2"),
            job("u", "other", t0),
            keyed(job("u", "other", t0), "k"),
            keyed(job("u", "other", t0), "k3"),
        ],
    )
    .await;
    assert!(
        !res[0].duplicate && !res[2].duplicate && !res[4].duplicate,
        "{res:?}"
    );
    assert_eq!(
        res[1],
        JobInsertResult {
            id: res[0].id,
            duplicate: true
        },
        "duplicate inside a batch"
    );
    assert_eq!(
        res[3],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "batch job duplicating a stored one"
    );
    assert!(res[0].id < res[2].id && res[2].id < res[4].id, "{res:?}");
    assert_eq!(all_jobs(&mut c).await.len(), 4);

    // Running is live.
    let claimed = claim(&mut c, "uq", "w", 10, t0).await;
    assert_eq!(ids_of(&claimed), vec![first]);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "running holder"
    );

    // Retrying is live.
    let done = complete(
        &mut c,
        vec![completion(
            first,
            1,
            "w",
            t0,
            t0 + ms(10),
            CompletionOutcome::Retry {
                run_at: t0 + Duration::minutes(1),
                error: "again".into(),
            },
        )],
    )
    .await;
    assert_eq!(done, vec![first]);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: first,
            duplicate: true
        },
        "retrying holder"
    );

    // Completed frees the key.
    let claimed = claim(&mut c, "uq", "w", 10, t0 + Duration::minutes(1)).await;
    assert_eq!(ids_of(&claimed), vec![first]);
    let done = complete(
        &mut c,
        vec![completion(
            first,
            2,
            "w",
            t0 + Duration::minutes(1),
            t0 + Duration::minutes(2),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![first]);
    let second = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await[0];
    assert!(
        !second.duplicate,
        "key of a completed job is free: {second:?}"
    );
    assert!(second.id > first);

    // Cancelled frees it too.
    assert_eq!(
        cancel_jobs(&mut c, vec![second.id], t0).await,
        vec![second.id]
    );
    let third = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await[0];
    assert!(
        !third.duplicate,
        "key of a cancelled job is free: {third:?}"
    );
    assert!(third.id > second.id);
    let res = insert(&mut c, vec![keyed(job("u", "uq", t0), "k")]).await;
    assert_eq!(
        res[0],
        JobInsertResult {
            id: third.id,
            duplicate: true
        },
        "the live holder"
    );
    assert_eq!(get(&mut c, first).await.status, JobState::Completed);
}

// ------------------------------------------------------------------------------------------
// Claim
// ------------------------------------------------------------------------------------------

/// Claims go by priority (highest first), then `run_at`, then id; the limit holds; future jobs
/// wait for their time; a claimed job is running, attempt 1, locked by the worker.
pub async fn claim_order_and_limit<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let m = Duration::minutes;
    let with_prio = |p: i16, run_at| {
        let mut j = job("c", "q", run_at);
        j.priority = p;
        j
    };
    let ids = insert_new(
        &mut c,
        vec![
            with_prio(0, t0 - m(10)),  // j1
            with_prio(5, t0 - m(5)),   // j2
            with_prio(5, t0 - m(8)),   // j3
            with_prio(5, t0 - m(8)),   // j4: as j3, higher id
            with_prio(10, t0 - m(1)),  // j5
            with_prio(3, t0 + m(10)),  // j6: not due yet
            with_prio(10, t0 + m(10)), // j7: not due yet, however urgent
        ],
    )
    .await;
    let [j1, j2, j3, j4, j5, j6, j7] = ids[..] else {
        unreachable!()
    };

    assert!(
        claim(&mut c, "q", "w0", 0, t0).await.is_empty(),
        "limit 0 claims nothing"
    );

    let now = t0;
    let got = claim(&mut c, "q", "w1", 2, now).await;
    assert_eq!(ids_of(&got), vec![j5, j3], "first two in claim order");
    for j in &got {
        assert_eq!(j.status, JobState::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.locked_by.as_deref(), Some("w1"));
        assert_eq!(j.locked_at, Some(now));
        assert_eq!(j.started_at, Some(now));
        assert_eq!(j.completed_at, None);
        let stored = get(&mut c, j.id).await;
        assert_eq!(&stored, j, "job_get agrees with the claimed row");
    }

    let got = claim(&mut c, "q", "w2", 10, now).await;
    assert_eq!(
        ids_of(&got),
        vec![j4, j2, j1],
        "the rest of the due jobs, in order"
    );
    assert!(got.iter().all(|j| j.locked_by.as_deref() == Some("w2")));

    assert!(
        claim(&mut c, "q", "w3", 10, now).await.is_empty(),
        "future jobs claimed"
    );
    let almost = t0 + m(10) - Duration::seconds(1);
    assert!(
        claim(&mut c, "q", "w3", 10, almost).await.is_empty(),
        "claimed early"
    );
    for id in [j6, j7] {
        assert_eq!(get(&mut c, id).await.status, JobState::Queued);
    }
    let due = t0 + m(10);
    let got = claim(&mut c, "q", "w3", 10, due).await;
    assert_eq!(ids_of(&got), vec![j7, j6], "due once run_at is reached");
    assert!(
        got.iter()
            .all(|j| j.started_at == Some(due) && j.attempts == 1)
    );
    assert!(claim(&mut c, "q", "w3", 10, due + m(60)).await.is_empty());
}

/// A claim takes jobs of the named queue only.
pub async fn claim_named_queue_only<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let a = insert_new(&mut c, vec![job("x", "a", t0), job("x", "a", t0)]).await;
    let b = insert_new(&mut c, vec![job("x", "b", t0), job("x", "b", t0)]).await;

    assert!(claim(&mut c, "nope", "w", 10, t0).await.is_empty());
    let got = claim(&mut c, "a", "w", 10, t0).await;
    assert_eq!(ids_of(&got), a);
    for id in &b {
        let j = get(&mut c, *id).await;
        assert_eq!(j.status, JobState::Queued, "job of another queue claimed");
        assert_eq!(j.attempts, 0);
    }
    assert!(claim(&mut c, "a", "w", 10, t0).await.is_empty());
    assert_eq!(ids_of(&claim(&mut c, "b", "w", 10, t0).await), b);
}

/// Concurrent claimers on separate connections never receive the same job, and between them
/// claim every job.
pub async fn concurrent_claims<T: TestDb>(db: &T) {
    let t0 = base_time();
    let ids = {
        let mut c = conn(db).await;
        let jobs = (0..500)
            .map(|i| {
                let mut j = job("conc", "concurrent", t0 - Duration::minutes(1));
                j.payload = json!({ "i": i });
                j.priority = (i % 3) as i16;
                j
            })
            .collect();
        insert_new(&mut c, jobs).await
    };

    let mut tasks = Vec::new();
    for w in 0..4i32 {
        let d = db.driver().clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker-{w}");
            let mut mine = Vec::new();
            loop {
                let mut c = d.conn().await.expect("conn");
                let got = claim(&mut c, "concurrent", &worker, 3 + 2 * w, t0).await;
                drop(c);
                if got.is_empty() {
                    break;
                }
                for j in &got {
                    assert_eq!(j.locked_by.as_deref(), Some(worker.as_str()));
                    assert_eq!(j.attempts, 1, "job {} claimed twice", j.id);
                    assert_eq!(j.status, JobState::Running);
                }
                mine.extend(got.iter().map(|j| j.id));
                tokio::task::yield_now().await;
            }
            (worker, mine)
        }));
    }
    let mut claimed_by = BTreeMap::new();
    let mut total = 0;
    for t in tasks {
        let (worker, mine) = t.await.expect("claimer task panicked");
        total += mine.len();
        for id in mine {
            if let Some(other) = claimed_by.insert(id, worker.clone()) {
                panic!("job {id} handed to both {other} and {worker}");
            }
        }
    }
    assert_eq!(
        total, 500,
        "claims in total (a job claimed twice counts twice)"
    );
    let claimed: Vec<i64> = claimed_by.keys().copied().collect();
    assert_eq!(claimed, ids, "every job claimed exactly once");

    let mut c = conn(db).await;
    assert!(
        claim(&mut c, "concurrent", "late", 1000, t0)
            .await
            .is_empty()
    );
    for j in all_jobs(&mut c).await {
        assert_eq!(j.status, JobState::Running);
        assert_eq!(j.attempts, 1, "job {} claimed more than once", j.id);
        assert_eq!(
            j.locked_by.as_ref(),
            Some(&claimed_by[&j.id]),
            "job {} locked by another worker than the one it was handed to",
            j.id
        );
    }
}

/// A paused queue is not claimed; `*` pauses every queue; resuming restores claims;
/// `queue_list` shows the pause.
pub async fn pause_resume<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let p1 = insert_new(&mut c, vec![job("p", "p1", t0), job("p", "p1", t0)]).await;
    let p2 = insert_new(&mut c, vec![job("p", "p2", t0), job("p", "p2", t0)]).await;
    let set = |name: &str, paused: bool, now: DateTime<Utc>| QueueSetPausedParams {
        name: name.to_owned(),
        paused,
        now: Some(now),
    };

    let row = c
        .queue_set_paused(set("p1", true, t0))
        .await
        .expect("pause");
    assert_eq!(
        row,
        QueueRow {
            name: "p1".into(),
            paused_at: Some(t0),
            updated_at: t0
        }
    );
    assert!(
        claim(&mut c, "p1", "w", 10, t0).await.is_empty(),
        "paused queue claimed"
    );
    assert_eq!(ids_of(&claim(&mut c, "p2", "w", 1, t0).await), vec![p2[0]]);

    // Pausing again keeps the first pause time.
    let later = t0 + Duration::minutes(1);
    let row = c
        .queue_set_paused(set("p1", true, later))
        .await
        .expect("pause again");
    assert_eq!(row.paused_at, Some(t0), "a second pause moved paused_at");
    let queues = c.queue_list().await.expect("queue_list");
    assert_eq!(queues.len(), 1, "{queues:?}");
    assert_eq!(queues[0].name, "p1");
    assert_eq!(queues[0].paused_at, Some(t0));

    let resumed = t0 + Duration::minutes(2);
    let row = c
        .queue_set_paused(set("p1", false, resumed))
        .await
        .expect("resume");
    assert_eq!(
        row,
        QueueRow {
            name: "p1".into(),
            paused_at: None,
            updated_at: resumed
        }
    );
    assert_eq!(
        ids_of(&claim(&mut c, "p1", "w", 1, resumed).await),
        vec![p1[0]]
    );

    // '*' pauses every queue.
    let row = c
        .queue_set_paused(set("*", true, resumed))
        .await
        .expect("pause *");
    assert_eq!(row.paused_at, Some(resumed));
    assert!(
        claim(&mut c, "p1", "w", 10, resumed).await.is_empty(),
        "claimed under '*'"
    );
    assert!(
        claim(&mut c, "p2", "w", 10, resumed).await.is_empty(),
        "claimed under '*'"
    );
    let mut queues = c.queue_list().await.expect("queue_list");
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["*", "p1"]);
    assert_eq!(queues[0].paused_at, Some(resumed));
    assert_eq!(queues[1].paused_at, None);

    let end = resumed + Duration::minutes(1);
    c.queue_set_paused(set("*", false, end))
        .await
        .expect("resume *");
    assert_eq!(
        ids_of(&claim(&mut c, "p1", "w", 10, end).await),
        vec![p1[1]]
    );
    assert_eq!(
        ids_of(&claim(&mut c, "p2", "w", 10, end).await),
        vec![p2[1]]
    );
    let queues = c.queue_list().await.expect("queue_list");
    assert!(queues.iter().all(|q| q.paused_at.is_none()), "{queues:?}");
}

// ------------------------------------------------------------------------------------------
// Completion
// ------------------------------------------------------------------------------------------

/// Each completion outcome moves the job where it should, and writes exactly one attempt row.
pub async fn complete_outcomes<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let ids = insert_new(
        &mut c,
        (0..4)
            .map(|_| job("outcome", "outcomes", t0 - Duration::minutes(1)))
            .collect(),
    )
    .await;
    let [a, b, d, r] = ids[..] else {
        unreachable!()
    };
    let got = claim(&mut c, "outcomes", "w1", 10, t0).await;
    assert_eq!(ids_of(&got), ids);

    let retry_at = t0 + Duration::minutes(10);
    let done = complete(
        &mut c,
        vec![
            completion(a, 1, "w1", t0, t0 + ms(1500), CompletionOutcome::Completed),
            completion(
                b,
                1,
                "w1",
                t0,
                t0 + ms(2000),
                CompletionOutcome::Retry {
                    run_at: retry_at,
                    error: "transient: timeout".into(),
                },
            ),
            completion(
                d,
                1,
                "w1",
                t0,
                t0 + ms(2500),
                CompletionOutcome::Failed {
                    error: "permanent: bad pdf".into(),
                },
            ),
            completion(r, 1, "w1", t0, t0 + ms(3000), CompletionOutcome::Released),
        ],
    )
    .await;
    assert_eq!(done, ids, "every completion applied");

    // Completed.
    let j = get(&mut c, a).await;
    assert_eq!(j.status, JobState::Completed);
    assert_eq!(j.completed_at, Some(t0 + ms(1500)));
    assert_eq!(j.attempts, 1);
    assert_eq!(j.locked_by, None);
    assert_eq!(j.locked_at, None);
    assert_eq!(j.last_error, None);
    let at = attempts(&mut c, a).await;
    assert_eq!(at.len(), 1, "{at:?}");
    assert_attempt(
        &at[0],
        a,
        1,
        "w1",
        t0,
        t0 + ms(1500),
        AttemptOutcome::Completed,
        None,
    );

    // Retry.
    let j = get(&mut c, b).await;
    assert_eq!(j.status, JobState::Retrying);
    assert_eq!(j.run_at, retry_at);
    assert_eq!(j.last_error.as_deref(), Some("transient: timeout"));
    assert_eq!(j.completed_at, None);
    assert_eq!(j.attempts, 1);
    assert_eq!(j.locked_by, None);
    let at = attempts(&mut c, b).await;
    assert_eq!(at.len(), 1, "{at:?}");
    let err = Some("transient: timeout");
    assert_attempt(
        &at[0],
        b,
        1,
        "w1",
        t0,
        t0 + ms(2000),
        AttemptOutcome::Retried,
        err,
    );

    // Failed.
    let j = get(&mut c, d).await;
    assert_eq!(j.status, JobState::Failed);
    assert_eq!(j.completed_at, Some(t0 + ms(2500)));
    assert_eq!(j.last_error.as_deref(), Some("permanent: bad pdf"));
    assert_eq!(j.locked_by, None);
    let at = attempts(&mut c, d).await;
    assert_eq!(at.len(), 1, "{at:?}");
    let err = Some("permanent: bad pdf");
    assert_attempt(
        &at[0],
        d,
        1,
        "w1",
        t0,
        t0 + ms(2500),
        AttemptOutcome::Failed,
        err,
    );

    // Released: back to the queue, due at once, the attempt not counted.
    let j = get(&mut c, r).await;
    assert_eq!(j.status, JobState::Queued);
    assert_eq!(j.attempts, 0, "a released attempt still counts");
    assert_eq!(j.run_at, t0 + ms(3000));
    assert_eq!(j.completed_at, None);
    assert_eq!(j.locked_by, None);
    assert_eq!(j.locked_at, None);
    assert_eq!(j.last_error, None);
    let at = attempts(&mut c, r).await;
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(at[0].outcome, AttemptOutcome::Released);
    assert_eq!((at[0].attempt, at[0].worker_id.as_str()), (1, "w1"));
    assert_eq!((at[0].started_at, at[0].finished_at), (t0, t0 + ms(3000)));
    assert_eq!(at[0].duration_ms, 3000);

    let stats = c.job_stats().await.expect("job_stats");
    let find = |st: JobState| {
        stats
            .iter()
            .find(|s| s.job_type == "outcome" && s.queue == "outcomes" && s.status == st)
            .map(|s| s.count)
    };
    assert_eq!(find(JobState::Failed), Some(1), "{stats:?}");
    assert_eq!(find(JobState::Completed), Some(1), "{stats:?}");
    assert_eq!(find(JobState::Retrying), Some(1), "{stats:?}");
    assert_eq!(find(JobState::Queued), Some(1), "{stats:?}");
    assert_eq!(find(JobState::Running), None, "{stats:?}");

    // The released job is due again at once; the retrying one only at its run_at.
    let got = claim(&mut c, "outcomes", "w2", 10, t0 + Duration::minutes(5)).await;
    assert_eq!(ids_of(&got), vec![r], "only the released job is due");
    assert_eq!(got[0].attempts, 1);
    assert!(
        claim(&mut c, "outcomes", "w2", 10, retry_at - ms(1))
            .await
            .is_empty()
    );
    let got = claim(&mut c, "outcomes", "w2", 10, retry_at).await;
    assert_eq!(ids_of(&got), vec![b], "the retrying job, at its run_at");
    assert_eq!(got[0].attempts, 2);
    assert_eq!(got[0].status, JobState::Running);
    assert_eq!(got[0].locked_by.as_deref(), Some("w2"));

    let fin = retry_at + ms(750);
    let done = complete(
        &mut c,
        vec![completion(
            b,
            2,
            "w2",
            retry_at,
            fin,
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![b]);
    let j = get(&mut c, b).await;
    assert_eq!(
        (j.status, j.attempts, j.completed_at),
        (JobState::Completed, 2, Some(fin))
    );
    let at = attempts(&mut c, b).await;
    assert_eq!(at.len(), 2, "{at:?}");
    assert_attempt(
        &at[1],
        b,
        2,
        "w2",
        retry_at,
        fin,
        AttemptOutcome::Completed,
        None,
    );
}

/// Completions for a stale attempt, or for a job no longer running, are not applied.
pub async fn guarded_finalisation<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let id = add(&mut c, job("g", "g", t0)).await;
    let queued = add(&mut c, job("g", "g-idle", t0)).await;
    claim(&mut c, "g", "w1", 1, t0).await;
    let before = get(&mut c, id).await;

    // Wrong attempt number.
    let done = complete(
        &mut c,
        vec![completion(
            id,
            2,
            "w1",
            t0,
            t0 + ms(5),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert!(
        done.is_empty(),
        "completion of a wrong attempt applied: {done:?}"
    );
    assert_eq!(
        get(&mut c, id).await,
        before,
        "state changed by a refused completion"
    );
    assert!(attempts(&mut c, id).await.is_empty());

    // A job that is not running.
    for attempt in [0, 1] {
        let done = complete(
            &mut c,
            vec![completion(
                queued,
                attempt,
                "w1",
                t0,
                t0 + ms(5),
                CompletionOutcome::Completed,
            )],
        )
        .await;
        assert!(done.is_empty(), "completion of a queued job applied");
    }
    assert_eq!(get(&mut c, queued).await.status, JobState::Queued);
    assert!(attempts(&mut c, queued).await.is_empty());

    // A batch applies only its valid members, and one attempt once.
    let done = complete(
        &mut c,
        vec![
            completion(
                queued,
                1,
                "w1",
                t0,
                t0 + ms(5),
                CompletionOutcome::Completed,
            ),
            completion(id, 1, "w1", t0, t0 + ms(5), CompletionOutcome::Completed),
            completion(id, 1, "w1", t0, t0 + ms(5), CompletionOutcome::Completed),
            completion(
                id + 10_000,
                1,
                "w1",
                t0,
                t0 + ms(5),
                CompletionOutcome::Completed,
            ),
        ],
    )
    .await;
    assert_eq!(done, vec![id], "applied ids (each once)");
    let after = get(&mut c, id).await;
    assert_eq!(after.status, JobState::Completed);
    assert_eq!(
        attempts(&mut c, id).await.len(),
        1,
        "one attempt row per attempt"
    );

    // The same completion again: no longer running.
    let done = complete(
        &mut c,
        vec![completion(
            id,
            1,
            "w1",
            t0,
            t0 + ms(9),
            CompletionOutcome::Failed {
                error: "late".into(),
            },
        )],
    )
    .await;
    assert!(done.is_empty(), "second completion applied");
    assert_eq!(get(&mut c, id).await, after);
    assert_eq!(attempts(&mut c, id).await.len(), 1);

    // A worker whose job was rescued and claimed again cannot finish its old attempt.
    let lease = Duration::minutes(1);
    let hb = |id: &str, now| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: "host".into(),
        pid: 1,
        queues: vec!["g2".into()],
        now: Some(now),
    };
    let r = add(&mut c, job("g", "g2", t0)).await;
    c.worker_heartbeat(hb("old", t0)).await.expect("heartbeat");
    claim(&mut c, "g2", "old", 1, t0).await;
    let t1 = t0 + Duration::minutes(10);
    let rescued = c
        .job_rescue(JobRescueParams {
            lease,
            now: Some(t1),
            limit: 10,
        })
        .await
        .expect("job_rescue");
    assert_eq!(rescued.requeued, vec![r]);
    c.worker_heartbeat(hb("new", t1)).await.expect("heartbeat");
    let got = claim(&mut c, "g2", "new", 1, t1).await;
    assert_eq!(ids_of(&got), vec![r]);
    assert_eq!(got[0].attempts, 2);

    let done = complete(
        &mut c,
        vec![completion(
            r,
            1,
            "old",
            t0,
            t1 + ms(1),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert!(
        done.is_empty(),
        "the rescued worker completed its old attempt"
    );
    let j = get(&mut c, r).await;
    assert_eq!(
        (j.status, j.attempts, j.locked_by.as_deref()),
        (JobState::Running, 2, Some("new"))
    );
    let done = complete(
        &mut c,
        vec![completion(
            r,
            2,
            "new",
            t1,
            t1 + ms(2),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![r]);
    let at = attempts(&mut c, r).await;
    let outcomes: Vec<_> = at.iter().map(|a| (a.attempt, a.outcome)).collect();
    assert_eq!(
        outcomes,
        [(1, AttemptOutcome::Rescued), (2, AttemptOutcome::Completed)]
    );
}

/// `job_attempt_list` is oldest first, even when a manual retry restarts the numbering.
pub async fn attempt_list_oldest_first<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let id = add(&mut c, job("ord", "ord", t0)).await;

    claim(&mut c, "ord", "w", 1, t0).await;
    let retry = CompletionOutcome::Retry {
        run_at: t0 + s(2),
        error: "e1".into(),
    };
    assert_eq!(
        complete(&mut c, vec![completion(id, 1, "w", t0, t0 + s(1), retry)]).await,
        [id]
    );
    claim(&mut c, "ord", "w", 1, t0 + s(2)).await;
    let failed = CompletionOutcome::Failed { error: "e2".into() };
    let c2 = completion(id, 2, "w", t0 + s(2), t0 + s(3), failed);
    assert_eq!(complete(&mut c, vec![c2]).await, [id]);
    let requeued = retry_jobs(
        &mut c,
        JobRetryParams {
            ids: vec![id],
            now: Some(t0 + s(4)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(requeued, [id]);
    let got = claim(&mut c, "ord", "w", 1, t0 + s(5)).await;
    assert_eq!(got[0].attempts, 1, "a manual retry restarts the attempts");
    let c3 = completion(
        id,
        1,
        "w",
        t0 + s(5),
        t0 + s(6),
        CompletionOutcome::Completed,
    );
    assert_eq!(complete(&mut c, vec![c3]).await, [id]);

    let at = attempts(&mut c, id).await;
    let seen: Vec<_> = at
        .iter()
        .map(|a| (a.attempt, a.outcome, a.finished_at))
        .collect();
    assert_eq!(
        seen,
        [
            (1, AttemptOutcome::Retried, t0 + s(1)),
            (2, AttemptOutcome::Failed, t0 + s(3)),
            (1, AttemptOutcome::Completed, t0 + s(6)),
        ],
        "job_attempt_list must be oldest first"
    );
}

// ------------------------------------------------------------------------------------------
// Manual retry, cancel, rescue, delete
// ------------------------------------------------------------------------------------------

/// Claims `id` (alone in its queue) at `at` and finishes it with `outcome` at `at + 1 s`.
async fn finish<E: Executor>(
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

fn failed(error: &str) -> CompletionOutcome {
    CompletionOutcome::Failed {
        error: error.to_owned(),
    }
}

/// Manual retry of failed and cancelled jobs, by id or by filter; other jobs are left alone.
pub async fn manual_retry<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let early = t0 - Duration::hours(1);

    // By id.
    let f1 = add(&mut c, job("x", "r-f1", early)).await;
    finish(&mut c, "r-f1", early, failed("boom")).await;
    let x1 = add(&mut c, job("x", "r-x1", early)).await;
    assert_eq!(cancel_jobs(&mut c, vec![x1], early).await, vec![x1]);
    let done = add(&mut c, job("x", "r-done", early)).await;
    finish(&mut c, "r-done", early, CompletionOutcome::Completed).await;
    let run = add(&mut c, job("x", "r-run", early)).await;
    claim(&mut c, "r-run", "w", 1, early).await;
    let q = add(&mut c, job("x", "r-q", early)).await;
    let untouched: Vec<JobRow> = {
        let mut v = Vec::new();
        for id in [done, run, q] {
            v.push(get(&mut c, id).await);
        }
        v
    };

    let t1 = t0 + Duration::minutes(1);
    let got = retry_jobs(
        &mut c,
        JobRetryParams {
            ids: vec![f1, x1, done, run, q, q + 10_000],
            now: Some(t1),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        got,
        vec![f1, x1],
        "only failed and cancelled jobs are retried"
    );
    for id in [f1, x1] {
        let j = get(&mut c, id).await;
        assert_eq!(j.status, JobState::Queued, "job {id}");
        assert_eq!(j.attempts, 0, "job {id}");
        assert_eq!(j.run_at, t1, "job {id}");
        assert_eq!(j.completed_at, None, "job {id}");
        assert_eq!(j.locked_by, None, "job {id}");
    }
    for before in untouched {
        assert_eq!(
            get(&mut c, before.id).await,
            before,
            "retry touched a live/completed job"
        );
    }
    let got = claim(&mut c, "r-f1", "w", 1, t1).await;
    assert_eq!(got[0].attempts, 1, "a retried job runs with fresh attempts");

    // By filter (no ids).
    let mk = |t: &str, q: &str| job(t, q, early);
    let a_r2 = add(&mut c, mk("a", "r2")).await;
    finish(&mut c, "r2", early, failed("a")).await;
    let a_r3 = add(&mut c, mk("a", "r3")).await;
    finish(&mut c, "r3", early, failed("a")).await;
    let b_r2 = add(&mut c, mk("b", "r2")).await;
    finish(&mut c, "r2", early, failed("b")).await;
    let b_r4 = add(&mut c, mk("b", "r4")).await;
    assert_eq!(cancel_jobs(&mut c, vec![b_r4], early).await, vec![b_r4]);
    let b_done = add(&mut c, mk("b", "r5")).await;
    finish(&mut c, "r5", early, CompletionOutcome::Completed).await;

    let by_type = JobRetryParams {
        job_type: Some("a".into()),
        now: Some(t1),
        ..Default::default()
    };
    assert_eq!(
        retry_jobs(&mut c, by_type).await,
        vec![a_r2, a_r3],
        "by job_type"
    );
    let by_queue = JobRetryParams {
        queue: Some("r2".into()),
        now: Some(t1),
        ..Default::default()
    };
    assert_eq!(retry_jobs(&mut c, by_queue).await, vec![b_r2], "by queue");
    let both = JobRetryParams {
        job_type: Some("b".into()),
        queue: Some("r9".into()),
        now: Some(t1),
        ..Default::default()
    };
    assert!(
        retry_jobs(&mut c, both).await.is_empty(),
        "filters are combined with AND"
    );
    let every = JobRetryParams {
        now: Some(t1),
        ..Default::default()
    };
    assert_eq!(
        retry_jobs(&mut c, every).await,
        vec![b_r4],
        "no filter: every failed/cancelled job"
    );
    assert_eq!(get(&mut c, b_done).await.status, JobState::Completed);

    // A job whose unique key a live job holds stays where it is.
    let k1 = add(&mut c, keyed(job("k", "r-k", early), "the-key")).await;
    finish(&mut c, "r-k", early, failed("k")).await;
    let live = add(&mut c, keyed(job("k", "r-k2", early), "the-key")).await;
    assert_ne!(live, k1);
    let by_id = JobRetryParams {
        ids: vec![k1],
        now: Some(t1),
        ..Default::default()
    };
    assert!(
        retry_jobs(&mut c, by_id.clone()).await.is_empty(),
        "retry broke key uniqueness"
    );
    let every = JobRetryParams {
        now: Some(t1),
        ..Default::default()
    };
    assert!(
        retry_jobs(&mut c, every).await.is_empty(),
        "bulk retry broke key uniqueness"
    );
    assert_eq!(get(&mut c, k1).await.status, JobState::Failed);
    // Once the holder is finished, the key is free again.
    assert_eq!(cancel_jobs(&mut c, vec![live], t1).await, vec![live]);
    assert_eq!(retry_jobs(&mut c, by_id).await, vec![k1]);
}

/// Cancelling queued, retrying and running jobs; finished ones are left alone; a cancelled
/// running job's worker cannot complete it.
pub async fn cancel<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let q = add(&mut c, job("k", "c-q", t0)).await;
    let r = add(&mut c, job("k", "c-r", t0)).await;
    let rt = add(&mut c, job("k", "c-rt", t0)).await;
    let done = add(&mut c, job("k", "c-done", t0)).await;

    claim(&mut c, "c-r", "w1", 1, t0).await;
    finish(
        &mut c,
        "c-rt",
        t0,
        CompletionOutcome::Retry {
            run_at: t0 + Duration::hours(1),
            error: "later".into(),
        },
    )
    .await;
    finish(&mut c, "c-done", t0, CompletionOutcome::Completed).await;
    let done_before = get(&mut c, done).await;

    let t1 = t0 + s(3);
    assert_eq!(cancel_jobs(&mut c, vec![q], t1).await, vec![q]);
    let j = get(&mut c, q).await;
    assert_eq!(j.status, JobState::Cancelled);
    assert_eq!(j.completed_at, Some(t1));
    assert!(
        attempts(&mut c, q).await.is_empty(),
        "cancelling a queued job wrote an attempt"
    );

    assert_eq!(
        cancel_jobs(&mut c, vec![r, done, r + 10_000], t1).await,
        vec![r]
    );
    let j = get(&mut c, r).await;
    assert_eq!(j.status, JobState::Cancelled);
    assert_eq!(j.completed_at, Some(t1));
    assert_eq!(j.locked_by, None);
    assert_eq!(j.locked_at, None);
    let at = attempts(&mut c, r).await;
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(at[0].outcome, AttemptOutcome::Cancelled);
    assert_eq!((at[0].attempt, at[0].worker_id.as_str()), (1, "w1"));
    assert_eq!((at[0].started_at, at[0].finished_at), (t0, t1));
    assert_eq!(at[0].duration_ms, 3000);

    // The worker finishes later: refused.
    let late = complete(
        &mut c,
        vec![completion(
            r,
            1,
            "w1",
            t0,
            t1 + s(1),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert!(late.is_empty(), "a cancelled job's worker completed it");
    assert_eq!(get(&mut c, r).await.status, JobState::Cancelled);
    assert_eq!(attempts(&mut c, r).await.len(), 1);

    assert_eq!(
        cancel_jobs(&mut c, vec![rt], t1).await,
        vec![rt],
        "retrying jobs can be cancelled"
    );
    assert_eq!(get(&mut c, rt).await.status, JobState::Cancelled);
    assert!(
        claim(&mut c, "c-rt", "w", 10, t0 + Duration::hours(2))
            .await
            .is_empty(),
        "a cancelled job was claimed"
    );

    assert!(
        cancel_jobs(&mut c, vec![done, q], t1 + s(1))
            .await
            .is_empty(),
        "finished jobs cancelled"
    );
    assert_eq!(get(&mut c, done).await, done_before);
    assert_eq!(
        get(&mut c, q).await.completed_at,
        Some(t1),
        "cancelled twice"
    );
}

/// Jobs of workers whose heartbeat is older than the lease are rescued: requeued, or failed
/// when out of attempts; live workers' jobs are left alone.
pub async fn rescue<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let m = Duration::minutes;
    let lease = m(1);
    let hb = |id: &str, now| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: "host".into(),
        pid: 7,
        queues: vec![],
        now: Some(now),
    };
    c.worker_heartbeat(hb("dead", t0 - m(10)))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("alive", t0 - Duration::seconds(10)))
        .await
        .expect("heartbeat");
    // Exactly at the edge of the lease: not older than it.
    c.worker_heartbeat(hb("edge", t0 - lease))
        .await
        .expect("heartbeat");

    let early = t0 - Duration::hours(1);
    let with_max = |queue: &str, max| {
        let mut j = job("resc", queue, early);
        j.max_attempts = max;
        j
    };
    let ids = insert_new(
        &mut c,
        vec![
            with_max("ra", 3),
            with_max("rb", 1),
            with_max("rc", 3),
            with_max("rd", 3),
            with_max("re", 3),
            with_max("rq", 3),
        ],
    )
    .await;
    let [a, b, cc, d, e, q] = ids[..] else {
        unreachable!()
    };
    let started = t0 - m(10);
    claim(&mut c, "ra", "dead", 1, started).await;
    claim(&mut c, "rb", "dead", 1, started).await;
    claim(&mut c, "rc", "alive", 1, started).await;
    claim(&mut c, "rd", "ghost", 1, started).await; // no worker row at all
    claim(&mut c, "re", "edge", 1, started).await;
    let untouched: Vec<JobRow> = {
        let mut v = Vec::new();
        for id in [cc, e, q] {
            v.push(get(&mut c, id).await);
        }
        v
    };

    let res = c
        .job_rescue(JobRescueParams {
            lease,
            now: Some(t0),
            limit: 100,
        })
        .await
        .expect("job_rescue");
    assert_eq!(
        sorted(res.requeued.clone()),
        vec![a, d],
        "requeued: {res:?}"
    );
    assert_eq!(sorted(res.failed.clone()), vec![b], "failed: {res:?}");

    for (id, worker) in [(a, "dead"), (d, "ghost")] {
        let j = get(&mut c, id).await;
        assert_eq!(j.status, JobState::Queued, "job {id}");
        assert_eq!(j.attempts, 1, "job {id}: the rescued attempt counts");
        assert_eq!(j.run_at, t0, "job {id}: due at once");
        assert_eq!(j.locked_by, None, "job {id}");
        assert_eq!(j.locked_at, None, "job {id}");
        assert_eq!(j.completed_at, None, "job {id}");
        let err = j.last_error.unwrap_or_default();
        assert!(
            err.contains("lease"),
            "job {id}: last_error {err:?} should mention the lease"
        );
        let at = attempts(&mut c, id).await;
        assert_eq!(at.len(), 1, "{at:?}");
        assert_eq!(at[0].outcome, AttemptOutcome::Rescued);
        assert_eq!((at[0].attempt, at[0].worker_id.as_str()), (1, worker));
        assert_eq!((at[0].started_at, at[0].finished_at), (started, t0));
        assert_eq!(at[0].duration_ms, m(10).num_milliseconds());
    }
    let j = get(&mut c, b).await;
    assert_eq!(j.status, JobState::Failed, "out of attempts");
    assert_eq!(j.completed_at, Some(t0));
    assert!(j.last_error.unwrap_or_default().contains("lease"));
    assert_eq!(attempts(&mut c, b).await.len(), 1);
    for before in untouched {
        assert_eq!(
            get(&mut c, before.id).await,
            before,
            "rescue touched job {}",
            before.id
        );
    }

    let again = c
        .job_rescue(JobRescueParams {
            lease,
            now: Some(t0),
            limit: 100,
        })
        .await
        .expect("job_rescue");
    assert_eq!(again, Default::default(), "nothing left to rescue");
    c.worker_heartbeat(hb("w2", t0)).await.expect("heartbeat");
    let got = claim(&mut c, "ra", "w2", 1, t0).await;
    assert_eq!(
        (got[0].id, got[0].attempts),
        (a, 2),
        "a rescued job runs again"
    );

    // The limit.
    let lim = insert_new(&mut c, (0..3).map(|_| job("resc", "rl", early)).collect()).await;
    assert_eq!(claim(&mut c, "rl", "ghost2", 10, started).await.len(), 3);
    let mut seen = Vec::new();
    for expected in [2, 1, 0] {
        let res = c
            .job_rescue(JobRescueParams {
                lease,
                now: Some(t0),
                limit: 2,
            })
            .await
            .expect("job_rescue");
        assert!(res.failed.is_empty());
        assert_eq!(res.requeued.len(), expected, "limit 2: {res:?}");
        seen.extend(res.requeued);
    }
    assert_eq!(sorted(seen), lim);
}

/// Finished jobs older than their cut-off go, with their attempt rows; the rest stays.
pub async fn delete_finished<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let d = Duration::days;
    let early = t0 - d(60);
    // finish() ends a job 1 s after `at`.
    let one = Duration::seconds(1);

    let names = [
        "c_old", "c_edge", "c_new", "x_old", "f_mid", "f_old", "q_live", "r_live", "rt_live",
    ];
    let ids = insert_new(&mut c, names.iter().map(|q| job("del", q, early)).collect()).await;
    let [
        c_old,
        c_edge,
        c_new,
        x_old,
        f_mid,
        f_old,
        q_live,
        r_live,
        rt_live,
    ] = ids[..]
    else {
        unreachable!()
    };

    finish(
        &mut c,
        "c_old",
        t0 - d(8) - one,
        CompletionOutcome::Completed,
    )
    .await;
    finish(
        &mut c,
        "c_edge",
        t0 - d(7) - one,
        CompletionOutcome::Completed,
    )
    .await;
    finish(
        &mut c,
        "c_new",
        t0 - d(6) - one,
        CompletionOutcome::Completed,
    )
    .await;
    assert_eq!(
        cancel_jobs(&mut c, vec![x_old], t0 - d(8)).await,
        vec![x_old]
    );
    finish(&mut c, "f_mid", t0 - d(8) - one, failed("mid")).await;
    finish(&mut c, "f_old", t0 - d(31) - one, failed("old")).await;
    claim(&mut c, "r_live", "w", 1, early).await;
    finish(
        &mut c,
        "rt_live",
        t0 - d(40),
        CompletionOutcome::Retry {
            run_at: t0 + d(1),
            error: "later".into(),
        },
    )
    .await;
    assert_eq!(get(&mut c, c_edge).await.completed_at, Some(t0 - d(7)));
    assert_eq!(attempts(&mut c, c_old).await.len(), 1);

    let params = JobDeleteFinishedParams {
        completed_before: t0 - d(7),
        failed_before: t0 - d(30),
        limit: 100,
    };
    let n = c
        .job_delete_finished(params.clone())
        .await
        .expect("job_delete_finished");
    assert_eq!(n, 3, "deleted count");
    for id in [c_old, x_old, f_old] {
        assert!(gone(&mut c, id).await, "job {id} should be deleted");
        assert!(
            attempts(&mut c, id).await.is_empty(),
            "job {id}'s attempts should be deleted"
        );
    }
    for id in [c_edge, c_new, f_mid, q_live, r_live, rt_live] {
        assert!(!gone(&mut c, id).await, "job {id} should be kept");
    }
    assert_eq!(attempts(&mut c, c_new).await.len(), 1);
    assert_eq!(
        c.job_delete_finished(params.clone()).await.expect("delete"),
        0
    );

    // The limit.
    for i in 0..3 {
        let queue = format!("old{i}");
        add(&mut c, job("del", &queue, early)).await;
        finish(&mut c, &queue, t0 - d(9), CompletionOutcome::Completed).await;
    }
    let limited = JobDeleteFinishedParams { limit: 2, ..params };
    for expected in [2, 1, 0] {
        let n = c
            .job_delete_finished(limited.clone())
            .await
            .expect("delete");
        assert_eq!(n, expected, "limit 2");
    }
    assert_eq!(all_jobs(&mut c).await.len(), 6);
}

// ------------------------------------------------------------------------------------------
// Reading
// ------------------------------------------------------------------------------------------

/// `job_stats`: one row per (job_type, queue, status) with its count.
pub async fn job_stats<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let before = Utc::now();
    insert_new(
        &mut c,
        vec![
            job("a", "q1", t0),
            job("a", "q1", t0),
            job("a", "q1", t0),
            job("a", "q2", t0),
            job("b", "q1", t0),
            job("b", "q1", t0),
        ],
    )
    .await;
    claim(&mut c, "q1", "w", 1, t0).await; // the first "a" job
    add(&mut c, job("b", "q3", t0)).await;
    finish(&mut c, "q3", t0, failed("x")).await;

    let stats = c.job_stats().await.expect("job_stats");
    let got: BTreeSet<(String, String, &str, i64)> = stats
        .iter()
        .map(|s| {
            (
                s.job_type.clone(),
                s.queue.clone(),
                s.status.as_str(),
                s.count,
            )
        })
        .collect();
    let row = |t: &str, q: &str, s: JobState, n| (t.to_owned(), q.to_owned(), s.as_str(), n);
    let expected = BTreeSet::from([
        row("a", "q1", JobState::Queued, 2),
        row("a", "q1", JobState::Running, 1),
        row("a", "q2", JobState::Queued, 1),
        row("b", "q1", JobState::Queued, 2),
        row("b", "q3", JobState::Failed, 1),
    ]);
    assert_eq!(got, expected);
    assert_eq!(
        stats.len(),
        expected.len(),
        "duplicate stat rows: {stats:?}"
    );
    for s in &stats {
        let oldest = s.oldest_created_at.expect("oldest_created_at");
        assert_near(oldest, before, Duration::seconds(30), "oldest_created_at");
    }
}

/// `job_list`: filters, newest first, cursor, limit.
pub async fn job_list<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let doc = Uuid::new_v4();
    let with_doc = |mut j: JobInsertParams| {
        j.document_id = Some(doc);
        j
    };
    let ids = insert_new(
        &mut c,
        vec![
            with_doc(job("a", "q1", t0)),
            job("a", "q2", t0),
            with_doc(job("b", "q1", t0)),
            job("b", "q2", t0),
            job("c", "q1", t0),
        ],
    )
    .await;
    let [a1, a2, b1, b2, c1] = ids[..] else {
        unreachable!()
    };
    let got = claim(&mut c, "q1", "w", 1, t0).await;
    assert_eq!(ids_of(&got), vec![a1]);

    let p = |f: fn(&mut JobListParams)| {
        let mut p = JobListParams {
            limit: 100,
            ..Default::default()
        };
        f(&mut p);
        p
    };
    assert_eq!(
        list(&mut c, p(|_| {})).await,
        [c1, b2, b1, a2, a1],
        "newest first"
    );
    assert_eq!(
        list(&mut c, p(|p| p.states = vec![JobState::Running])).await,
        [a1]
    );
    assert_eq!(
        list(&mut c, p(|p| p.states = vec![JobState::Queued])).await,
        [c1, b2, b1, a2]
    );
    assert_eq!(
        list(
            &mut c,
            p(|p| p.states = vec![JobState::Queued, JobState::Running])
        )
        .await,
        [c1, b2, b1, a2, a1]
    );
    assert!(
        list(&mut c, p(|p| p.states = vec![JobState::Completed]))
            .await
            .is_empty()
    );
    assert_eq!(
        list(&mut c, p(|p| p.job_types = vec!["a".into()])).await,
        [a2, a1]
    );
    assert_eq!(
        list(&mut c, p(|p| p.job_types = vec!["a".into(), "c".into()])).await,
        [c1, a2, a1]
    );
    assert_eq!(
        list(&mut c, p(|p| p.queue = Some("q2".into()))).await,
        [b2, a2]
    );
    let mut by_doc = p(|_| {});
    by_doc.document_id = Some(doc);
    assert_eq!(list(&mut c, by_doc).await, [b1, a1]);
    let mut by_other_doc = p(|_| {});
    by_other_doc.document_id = Some(Uuid::new_v4());
    assert!(list(&mut c, by_other_doc).await.is_empty());
    assert_eq!(
        list(
            &mut c,
            p(|p| {
                p.job_types = vec!["a".into(), "b".into()];
                p.queue = Some("q1".into());
                p.states = vec![JobState::Queued];
            })
        )
        .await,
        [b1],
        "filters combine"
    );
    let mut before = p(|_| {});
    before.before_id = Some(b1);
    assert_eq!(list(&mut c, before).await, [a2, a1], "cursor");
    assert_eq!(list(&mut c, p(|p| p.limit = 2)).await, [c1, b2], "limit");
    assert!(list(&mut c, p(|p| p.limit = 0)).await.is_empty(), "limit 0");

    // Paging through everything with the cursor.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = list(
            &mut c,
            JobListParams {
                before_id: cursor,
                limit: 2,
                ..Default::default()
            },
        )
        .await;
        if page.is_empty() {
            break;
        }
        cursor = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![c1, b2], vec![b1, a2], vec![a1]]);
}

// ------------------------------------------------------------------------------------------
// Workers and leader
// ------------------------------------------------------------------------------------------

/// Heartbeats create then update workers; listing, deleting, deleting stale ones.
pub async fn workers<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let hb = |id: &str, host: &str, queues: &[&str], now| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: host.to_owned(),
        pid: 4242,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        now: Some(now),
    };

    c.worker_heartbeat(hb("w1", "h1", &["a", "b"], t0))
        .await
        .expect("heartbeat");
    let ws = c.worker_list().await.expect("worker_list");
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].id, "w1");
    assert_eq!(ws[0].hostname, "h1");
    assert_eq!(ws[0].pid, 4242);
    assert_eq!(ws[0].queues, ["a", "b"]);
    assert_eq!(ws[0].started_at, t0);
    assert_eq!(ws[0].heartbeat_at, t0);

    c.worker_heartbeat(hb("w1", "h1", &["a"], t0 + s(30)))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("w2", "h2", &[], t0 + s(10)))
        .await
        .expect("heartbeat");
    let ws = c.worker_list().await.expect("worker_list");
    let names: Vec<_> = ws.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(names, ["w1", "w2"], "most recent heartbeat first");
    assert_eq!(ws[0].started_at, t0, "a heartbeat moved started_at");
    assert_eq!(ws[0].heartbeat_at, t0 + s(30), "heartbeat_at did not move");
    assert_eq!(ws[0].queues, ["a"]);
    assert!(ws[1].queues.is_empty());

    c.worker_delete("w2").await.expect("worker_delete");
    c.worker_delete("never-existed")
        .await
        .expect("worker_delete of an unknown worker");
    let ws = c.worker_list().await.expect("worker_list");
    assert_eq!(ws.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1"]);

    // Stale workers: silent ones go, unless they still hold a running job.
    let old = t0 - Duration::minutes(10);
    c.worker_heartbeat(hb("busy", "h3", &["st"], old))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("idle", "h4", &["st"], old))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("edge", "h5", &["st"], t0 - Duration::minutes(1)))
        .await
        .expect("heartbeat");
    add(&mut c, job("s", "st", old)).await;
    claim(&mut c, "st", "busy", 1, old).await;
    let n = c
        .worker_delete_stale(t0 - Duration::minutes(1))
        .await
        .expect("worker_delete_stale");
    assert_eq!(n, 1, "only 'idle' is stale and free");
    let mut left: Vec<_> = c
        .worker_list()
        .await
        .expect("worker_list")
        .into_iter()
        .map(|w| w.id)
        .collect();
    left.sort();
    assert_eq!(left, ["busy", "edge", "w1"]);
}

/// Leader election: first candidate wins, others are refused during the term, the leader
/// renews, a lapsed term is taken over, resigning frees it at once.
pub async fn leader<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let ttl = s(30);
    let elect = |id: &str, now| LeaderElectParams {
        leader_id: id.to_owned(),
        ttl,
        now: Some(now),
    };

    assert!(c.leader_get(Some(t0)).await.expect("leader_get").is_none());
    assert!(
        c.leader_attempt_elect(elect("A", t0)).await.expect("elect"),
        "first candidate"
    );
    let l = c
        .leader_get(Some(t0 + s(1)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!(
        (l.leader_id.as_str(), l.elected_at, l.expires_at),
        ("A", t0, t0 + ttl)
    );

    assert!(
        !c.leader_attempt_elect(elect("B", t0 + s(10)))
            .await
            .expect("elect"),
        "second candidate elected during a valid term"
    );
    let l = c
        .leader_get(Some(t0 + s(10)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!(l.leader_id, "A");

    assert!(
        c.leader_attempt_elect(elect("A", t0 + s(20)))
            .await
            .expect("renew"),
        "renewal"
    );
    let l = c
        .leader_get(Some(t0 + s(20)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!(
        (l.leader_id.as_str(), l.elected_at, l.expires_at),
        ("A", t0, t0 + s(50)),
        "renewal keeps elected_at and moves expires_at"
    );
    assert!(
        !c.leader_attempt_elect(elect("B", t0 + s(40)))
            .await
            .expect("elect"),
        "the renewed term was taken over"
    );

    // The term lapses.
    assert!(
        c.leader_get(Some(t0 + s(51)))
            .await
            .expect("leader_get")
            .is_none(),
        "lapsed"
    );
    assert!(
        c.leader_attempt_elect(elect("B", t0 + s(51)))
            .await
            .expect("elect"),
        "lapsed term not taken over"
    );
    let l = c
        .leader_get(Some(t0 + s(52)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!(
        (l.leader_id.as_str(), l.elected_at, l.expires_at),
        ("B", t0 + s(51), t0 + s(81))
    );
    assert!(
        !c.leader_attempt_elect(elect("A", t0 + s(52)))
            .await
            .expect("elect")
    );

    // Resigning: only the leader's resignation counts; it frees the seat at once.
    c.leader_resign("A").await.expect("resign of a non-leader");
    let l = c
        .leader_get(Some(t0 + s(53)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!(
        l.leader_id, "B",
        "a non-leader's resignation removed the leader"
    );
    c.leader_resign("B").await.expect("resign");
    assert!(
        c.leader_get(Some(t0 + s(53)))
            .await
            .expect("leader_get")
            .is_none()
    );
    assert!(
        c.leader_attempt_elect(elect("A", t0 + s(53)))
            .await
            .expect("elect"),
        "seat not free after resignation"
    );
    let l = c
        .leader_get(Some(t0 + s(54)))
        .await
        .expect("leader_get")
        .expect("a leader");
    assert_eq!((l.leader_id.as_str(), l.elected_at), ("A", t0 + s(53)));
}

// ------------------------------------------------------------------------------------------
// Cron
// ------------------------------------------------------------------------------------------

fn schedule(name: &str, expression: &str, next_run_at: DateTime<Utc>) -> CronScheduleUpsertParams {
    CronScheduleUpsertParams {
        name: name.to_owned(),
        expression: expression.to_owned(),
        timezone: "UTC".into(),
        job_type: "cleanup".into(),
        queue: "maint".into(),
        payload: json!({"retention_days": 7}),
        priority: 3,
        enabled: true,
        missed_policy: MissedRunPolicy::RunOnce,
        next_run_at,
    }
}

fn cron_job(key: &str) -> JobInsertParams {
    let mut j = JobInsertParams::new("cleanup", json!({"retention_days": 7}));
    j.queue = "maint".into();
    j.priority = 3;
    j.unique_key = Some(key.to_owned());
    j
}

async fn schedule_named<E: Executor>(c: &mut E, name: &str) -> CronSchedule {
    c.cron_schedule_list()
        .await
        .expect("cron_schedule_list")
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("schedule {name} not listed"))
}

async fn runs<E: Executor>(c: &mut E, name: Option<&str>, limit: i64) -> Vec<CronRun> {
    c.cron_run_list(CronRunListParams {
        schedule_name: name.map(str::to_owned),
        limit,
    })
    .await
    .expect("cron_run_list")
}

/// Schedules upsert (keeping `next_run_at` while the expression is unchanged); occurrences are
/// enqueued exactly once; manual and skipped runs; run state follows the job.
pub async fn cron_schedules_and_runs<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let h = Duration::hours;
    let (n1, n2, n3, n4) = (t0 + h(1), t0 + h(2), t0 + h(24), t0 + h(48));
    let m = t0 + Duration::minutes(5);

    let s = c
        .cron_schedule_upsert(schedule("nightly", "0 2 * * *", n1))
        .await
        .expect("upsert");
    let expected = CronSchedule {
        name: "nightly".into(),
        expression: "0 2 * * *".into(),
        timezone: "UTC".into(),
        job_type: "cleanup".into(),
        queue: "maint".into(),
        payload: json!({"retention_days": 7}),
        priority: 3,
        enabled: true,
        missed_policy: MissedRunPolicy::RunOnce,
        next_run_at: n1,
        last_run_at: None,
    };
    assert_eq!(s, expected);
    assert_eq!(
        c.cron_schedule_list().await.expect("list"),
        vec![expected.clone()]
    );

    // Same expression: next_run_at stays, other fields update.
    let mut same = schedule("nightly", "0 2 * * *", n1 + h(24));
    same.priority = 4;
    same.enabled = false;
    same.missed_policy = MissedRunPolicy::Skip;
    let s = c.cron_schedule_upsert(same).await.expect("upsert");
    assert_eq!(
        s.next_run_at, n1,
        "an unchanged expression must keep next_run_at"
    );
    assert_eq!(
        (s.priority, s.enabled, s.missed_policy),
        (4, false, MissedRunPolicy::Skip)
    );

    // A new expression (or time zone) replaces next_run_at.
    let s = c
        .cron_schedule_upsert(schedule("nightly", "0 3 * * *", n2 - h(1)))
        .await
        .expect("upsert");
    assert_eq!(
        (s.expression.as_str(), s.next_run_at),
        ("0 3 * * *", n2 - h(1))
    );
    let mut tz = schedule("nightly", "0 3 * * *", n2);
    tz.timezone = "Europe/Paris".into();
    let s = c.cron_schedule_upsert(tz).await.expect("upsert");
    assert_eq!((s.timezone.as_str(), s.next_run_at), ("Europe/Paris", n2));
    assert_eq!((s.priority, s.enabled), (3, true));
    assert_eq!(c.cron_schedule_list().await.expect("list").len(), 1);

    // A scheduled occurrence.
    let occurrence =
        |for_: DateTime<Utc>, expected: Option<DateTime<Utc>>, next, job| CronRunEnqueueParams {
            schedule_name: "nightly".into(),
            scheduled_for: for_,
            expected_next_run_at: expected,
            next_run_at: next,
            job,
            message: None,
        };
    let key2 = format!("cron:nightly:{}", n2.timestamp());
    let params = occurrence(n2, Some(n2), n3, Some(cron_job(&key2)));
    let run = c
        .cron_run_enqueue(params.clone())
        .await
        .expect("cron_run_enqueue")
        .expect("the occurrence is enqueued");
    assert_eq!(run.schedule_name, "nightly");
    assert_eq!(run.scheduled_for, n2);
    assert_eq!(run.status, "enqueued");
    assert_eq!(
        (run.started_at, run.finished_at, run.message.as_deref()),
        (None, None, None)
    );
    let j1 = run.job_id.expect("the run names its job");
    let j = get(&mut c, j1).await;
    assert_eq!(
        (j.job_type.as_str(), j.queue.as_str(), j.priority, j.status),
        ("cleanup", "maint", 3, JobState::Queued)
    );
    assert_eq!(j.unique_key.as_deref(), Some(key2.as_str()));
    assert_eq!(j.payload, json!({"retention_days": 7}));
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        (s.next_run_at, s.last_run_at),
        (n3, Some(n2)),
        "schedule advanced"
    );

    // The same call again (another node, or a retry): nothing.
    let jobs_before = all_jobs(&mut c).await.len();
    assert!(
        c.cron_run_enqueue(params)
            .await
            .expect("cron_run_enqueue")
            .is_none(),
        "an occurrence enqueued twice"
    );
    assert_eq!(
        all_jobs(&mut c).await.len(),
        jobs_before,
        "a stale enqueue inserted a job"
    );
    assert_eq!(runs(&mut c, Some("nightly"), 100).await.len(), 1);
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!((s.next_run_at, s.last_run_at), (n3, Some(n2)));

    // A manual run: recorded, the schedule does not move.
    let mut manual = occurrence(m, None, t0 + h(1000), Some(cron_job("cron:nightly:manual")));
    manual.message = Some("manual".into());
    let mrun = c
        .cron_run_enqueue(manual)
        .await
        .expect("cron_run_enqueue")
        .expect("a manual run is enqueued");
    assert_eq!((mrun.scheduled_for, mrun.status.as_str()), (m, "enqueued"));
    assert_eq!(mrun.message.as_deref(), Some("manual"));
    let j2 = mrun.job_id.expect("the manual run's job");
    assert_ne!(j2, j1);
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        (s.next_run_at, s.last_run_at),
        (n3, Some(n2)),
        "a manual run moved the schedule"
    );

    // A skipped occurrence: no job, the schedule advances.
    let jobs_before = all_jobs(&mut c).await.len();
    let mut skip = occurrence(n3, Some(n3), n4, None);
    skip.message = Some("missed".into());
    let srun = c
        .cron_run_enqueue(skip)
        .await
        .expect("cron_run_enqueue")
        .expect("a skipped occurrence is recorded");
    assert_eq!((srun.status.as_str(), srun.job_id), ("skipped", None));
    assert_eq!(srun.message.as_deref(), Some("missed"));
    assert_eq!(
        all_jobs(&mut c).await.len(),
        jobs_before,
        "a skipped occurrence inserted a job"
    );
    let s = schedule_named(&mut c, "nightly").await;
    assert_eq!(
        s.next_run_at, n4,
        "a skipped occurrence must advance the schedule"
    );
    assert_eq!(
        s.last_run_at,
        Some(n2),
        "last_run_at names the last enqueued occurrence"
    );

    // An unknown schedule.
    let mut unknown = occurrence(n2, Some(n2), n3, Some(cron_job("cron:nope")));
    unknown.schedule_name = "nope".into();
    assert!(
        c.cron_run_enqueue(unknown)
            .await
            .expect("enqueue")
            .is_none()
    );

    // Listing: newest occurrence first, filtered by schedule.
    c.cron_schedule_upsert(schedule("hourly", "0 * * * *", t0 + Duration::minutes(30)))
        .await
        .expect("upsert");
    let h1 = t0 + Duration::minutes(30);
    let hourly = CronRunEnqueueParams {
        schedule_name: "hourly".into(),
        scheduled_for: h1,
        expected_next_run_at: Some(h1),
        next_run_at: h1 + h(1),
        job: Some(cron_job("cron:hourly:1")),
        message: None,
    };
    let hrun = c
        .cron_run_enqueue(hourly)
        .await
        .expect("enqueue")
        .expect("enqueued");
    let all: Vec<_> = runs(&mut c, None, 100).await.iter().map(|r| r.id).collect();
    assert_eq!(
        all,
        [srun.id, run.id, hrun.id, mrun.id],
        "newest occurrence first"
    );
    let nightly: Vec<_> = runs(&mut c, Some("nightly"), 100)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(nightly, [srun.id, run.id, mrun.id]);
    let two: Vec<_> = runs(&mut c, Some("nightly"), 2)
        .await
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(two, [srun.id, run.id], "limit");
    assert!(runs(&mut c, Some("nope"), 100).await.is_empty());

    // Run state follows the job's.
    let by_id = |rs: Vec<CronRun>, id: i64| rs.into_iter().find(|r| r.id == id).expect("run");
    let changed = c.cron_run_sync().await.expect("cron_run_sync");
    assert_eq!(changed, 3, "enqueued runs take their queued jobs' state");
    let rs = runs(&mut c, None, 100).await;
    assert_eq!(by_id(rs.clone(), run.id).status, "queued");
    assert_eq!(
        by_id(rs.clone(), srun.id).status,
        "skipped",
        "a skipped run has no job"
    );

    // The cron jobs' run_at is the database's "now": claim well after it.
    let claim_at = Utc::now().trunc_subsecs(0) + h(1);
    let got = claim(&mut c, "maint", "w", 10, claim_at).await;
    assert_eq!(
        sorted(ids_of(&got)),
        sorted(vec![j1, j2, hrun.job_id.expect("job")])
    );
    assert_eq!(c.cron_run_sync().await.expect("sync"), 3);
    let r = by_id(runs(&mut c, None, 100).await, run.id);
    assert_eq!(
        (r.status.as_str(), r.started_at, r.finished_at),
        ("running", Some(claim_at), None)
    );

    let fin = claim_at + Duration::seconds(2);
    let done = complete(
        &mut c,
        vec![
            completion(j1, 1, "w", claim_at, fin, CompletionOutcome::Completed),
            completion(j2, 1, "w", claim_at, fin, failed("kaput")),
        ],
    )
    .await;
    assert_eq!(done, sorted(vec![j1, j2]));
    assert_eq!(c.cron_run_sync().await.expect("sync"), 2);
    let rs = runs(&mut c, None, 100).await;
    let r = by_id(rs.clone(), run.id);
    assert_eq!(
        (
            r.status.as_str(),
            r.started_at,
            r.finished_at,
            r.message.as_deref()
        ),
        ("completed", Some(claim_at), Some(fin), None)
    );
    let r = by_id(rs.clone(), mrun.id);
    assert_eq!(
        (
            r.status.as_str(),
            r.started_at,
            r.finished_at,
            r.message.as_deref()
        ),
        ("failed", Some(claim_at), Some(fin), Some("kaput"))
    );
    assert_eq!(by_id(rs, hrun.id).status, "running");
    assert_eq!(
        c.cron_run_sync().await.expect("sync"),
        0,
        "finished runs are not synced again"
    );
}

/// The job a cron occurrence enqueues keeps every field of its [`JobInsertParams`], as
/// `job_insert_many` would store them.
pub async fn cron_run_enqueue_job_fields<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let next = t0 + Duration::hours(1);
    c.cron_schedule_upsert(schedule("fields", "0 * * * *", next))
        .await
        .expect("upsert");
    let doc = Uuid::new_v4();
    let mut j = cron_job("cron:fields:1");
    j.run_at = Some(next + Duration::minutes(5));
    j.document_id = Some(doc);
    j.max_attempts = 2;
    j.priority = 6;
    j.payload = json!({"what": "report", "n": 3});
    let run = c
        .cron_run_enqueue(CronRunEnqueueParams {
            schedule_name: "fields".into(),
            scheduled_for: next,
            expected_next_run_at: Some(next),
            next_run_at: next + Duration::hours(1),
            job: Some(j.clone()),
            message: None,
        })
        .await
        .expect("cron_run_enqueue")
        .expect("enqueued");
    let stored = get(&mut c, run.job_id.expect("job")).await;
    assert_eq!(stored.job_type, j.job_type);
    assert_eq!(stored.queue, j.queue);
    assert_eq!(stored.priority, 6);
    assert_eq!(stored.payload, j.payload);
    assert_eq!(stored.max_attempts, 2);
    assert_eq!(stored.unique_key, j.unique_key);
    assert_eq!(
        (stored.run_at, stored.document_id),
        (next + Duration::minutes(5), Some(doc)),
        "(run_at, document_id) of the enqueued job: the params' values were dropped"
    );
}

/// An occurrence already recorded is not enqueued again, and leaves nothing behind ("all or
/// nothing"), manual or scheduled; the schedule still moves past it.
pub async fn cron_run_enqueue_recorded_occurrence<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let h = Duration::hours;
    let (n1, n2) = (t0 + h(1), t0 + h(2));
    c.cron_schedule_upsert(schedule("rec", "0 * * * *", n1))
        .await
        .expect("upsert");
    let manual = |key: &str| CronRunEnqueueParams {
        schedule_name: "rec".into(),
        scheduled_for: n1,
        expected_next_run_at: None,
        next_run_at: n2,
        job: Some(cron_job(key)),
        message: Some("manual".into()),
    };
    let first = c
        .cron_run_enqueue(manual("rec:a"))
        .await
        .expect("enqueue")
        .expect("enqueued");
    let first_job = first.job_id.expect("job");
    // Its job finishes, so that its unique key no longer blocks anything.
    let got = claim(&mut c, "maint", "w", 10, Utc::now() + h(1)).await;
    assert_eq!(ids_of(&got), vec![first_job]);
    let started = got[0].started_at.expect("started_at");
    let done = complete(
        &mut c,
        vec![completion(
            first_job,
            1,
            "w",
            started,
            started + ms(1),
            CompletionOutcome::Completed,
        )],
    )
    .await;
    assert_eq!(done, vec![first_job]);

    assert!(
        c.cron_run_enqueue(manual("rec:b"))
            .await
            .expect("enqueue")
            .is_none(),
        "an occurrence recorded twice"
    );
    let after_manual: Vec<_> = ids_of(&all_jobs(&mut c).await);

    let scheduled = CronRunEnqueueParams {
        schedule_name: "rec".into(),
        scheduled_for: n1,
        expected_next_run_at: Some(n1),
        next_run_at: n2,
        job: Some(cron_job("rec:a")),
        message: None,
    };
    assert!(
        c.cron_run_enqueue(scheduled)
            .await
            .expect("enqueue")
            .is_none(),
        "an occurrence recorded twice"
    );
    let after_scheduled: Vec<_> = ids_of(&all_jobs(&mut c).await);
    assert_eq!(
        (after_manual, after_scheduled),
        (vec![first_job], vec![first_job]),
        "jobs (newest first) after the refused manual run, and after the refused scheduled run: \
         a refused enqueue must leave no job behind"
    );
    assert_eq!(runs(&mut c, Some("rec"), 10).await.len(), 1);
    let s = schedule_named(&mut c, "rec").await;
    assert_eq!(
        s.next_run_at, n2,
        "the schedule is stuck on a recorded occurrence"
    );
}

// ------------------------------------------------------------------------------------------
// Transactions and wake-ups
// ------------------------------------------------------------------------------------------

/// A transaction's insert is invisible to other connections until commit.
pub async fn transaction_commit_visibility<T: TestDb>(db: &T) {
    let other = db.connect_again().await;
    let t0 = base_time();
    let mut tx = db.driver().begin().await.expect("begin");
    let id = add(&mut tx, job("tx", "tx", t0)).await;
    assert_eq!(
        get(&mut tx, id).await.status,
        JobState::Queued,
        "the tx sees its own insert"
    );
    let got = claim(&mut tx, "tx", "w", 10, t0).await;
    assert_eq!(ids_of(&got), vec![id], "the tx can claim its own insert");
    {
        let mut oc = other.conn().await.expect("other conn");
        assert!(
            gone(&mut oc, id).await,
            "uncommitted job visible to another connection"
        );
        assert!(
            all_jobs(&mut oc).await.is_empty(),
            "uncommitted jobs listed elsewhere"
        );
    }
    tx.commit().await.expect("commit");
    let mut oc = other.conn().await.expect("other conn");
    let j = get(&mut oc, id).await;
    assert_eq!(
        (j.status, j.attempts),
        (JobState::Running, 1),
        "committed state"
    );
}

/// Rolling back (or dropping) a transaction discards its work.
pub async fn transaction_rollback<T: TestDb>(db: &T) {
    let t0 = base_time();
    let kept = {
        let mut c = conn(db).await;
        add(&mut c, job("tx", "kept", t0)).await
    };

    let mut tx = db.driver().begin().await.expect("begin");
    let id = add(&mut tx, job("tx", "tx", t0)).await;
    claim(&mut tx, "kept", "w", 1, t0).await;
    tx.rollback().await.expect("rollback");
    {
        let mut c = conn(db).await;
        assert!(gone(&mut c, id).await, "rolled-back insert persisted");
        let j = get(&mut c, kept).await;
        assert_eq!(
            (j.status, j.attempts),
            (JobState::Queued, 0),
            "rolled-back claim persisted"
        );
    }

    let mut tx = db.driver().begin().await.expect("begin");
    let dropped = add(&mut tx, job("tx", "tx", t0)).await;
    drop(tx);
    let mut c = conn(db).await;
    assert!(
        gone(&mut c, dropped).await,
        "a dropped transaction's insert persisted"
    );
    assert_eq!(ids_of(&all_jobs(&mut c).await), vec![kept]);
}

/// `wakeups()` fires after a committed insert (not before, not on rollback) and after a
/// plain insert.
pub async fn wakeups<T: TestDb>(db: &T) {
    let t0 = base_time();
    let w = db.driver().wakeups();

    // A transaction: nothing before commit, a wake-up after.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let mut tx = db.driver().begin().await.expect("begin");
    add(&mut tx, job("wake", "wake", t0)).await;
    settle().await;
    assert!(
        !fired(n.as_mut()).await,
        "woken before the transaction committed"
    );
    tx.commit().await.expect("commit");
    tokio::time::timeout(WAKE_TIMEOUT, n)
        .await
        .expect("no wake-up after a committed insert");

    // Rolled back: no wake-up.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let mut tx = db.driver().begin().await.expect("begin");
    add(&mut tx, job("wake", "wake", t0)).await;
    tx.rollback().await.expect("rollback");
    settle().await;
    assert!(!fired(n.as_mut()).await, "woken by a rolled-back insert");

    // A plain insert.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    {
        let mut c = conn(db).await;
        add(&mut c, job("wake", "wake", t0)).await;
    }
    tokio::time::timeout(WAKE_TIMEOUT, n)
        .await
        .expect("no wake-up after a plain insert");
}

// ------------------------------------------------------------------------------------------
// Monitoring
// ------------------------------------------------------------------------------------------

/// The original system's monitoring views exist and mean what they did: `job_queue_stats`,
/// `failed_jobs`, `stuck_jobs`.
pub async fn monitoring_views<T: TestDb>(db: &T) {
    // These run on the database's clock (the views do): due jobs, claimed "now".
    let due = Utc::now() - Duration::minutes(1);
    {
        let mut c = conn(db).await;
        insert_new(
            &mut c,
            vec![job("mon_a", "mon", due), job("mon_a", "mon", due)],
        )
        .await;
        add(&mut c, job("mon_b", "mon-failed", due)).await;
        add(&mut c, job("mon_b", "mon-stuck", due)).await;
        add(&mut c, job("mon_c", "mon-alive", due)).await;
        let claim_now = |queue: &str, worker: &str| JobGetAvailableParams {
            worker_id: worker.to_owned(),
            queue: queue.to_owned(),
            limit: 1,
            now: None,
        };
        let f = c
            .job_get_available(claim_now("mon-failed", "w"))
            .await
            .expect("claim");
        let started = f[0].started_at.expect("started_at");
        let done = complete(
            &mut c,
            vec![completion(
                f[0].id,
                1,
                "w",
                started,
                started + ms(5),
                failed("bad"),
            )],
        )
        .await;
        assert_eq!(done.len(), 1);
        // Claimed by a worker that never heartbeated: stuck.
        assert_eq!(
            c.job_get_available(claim_now("mon-stuck", "ghost"))
                .await
                .expect("claim")
                .len(),
            1
        );
        // Claimed by a worker with a fresh heartbeat: not stuck.
        c.worker_heartbeat(WorkerHeartbeatParams {
            id: "alive".into(),
            hostname: "h".into(),
            pid: 1,
            queues: vec!["mon-alive".into()],
            now: None,
        })
        .await
        .expect("heartbeat");
        assert_eq!(
            c.job_get_available(claim_now("mon-alive", "alive"))
                .await
                .expect("claim")
                .len(),
            1
        );
    }
    // (mon_a, mon, queued), (mon_b, mon-failed, failed), (mon_b, mon-stuck, running),
    // (mon_c, mon-alive, running)
    assert_eq!(
        db.query_rows("SELECT * FROM job_queue_stats").await,
        4,
        "job_queue_stats"
    );
    assert_eq!(
        db.query_rows("SELECT * FROM failed_jobs").await,
        1,
        "failed_jobs"
    );
    assert_eq!(
        db.query_rows("SELECT * FROM stuck_jobs").await,
        1,
        "stuck_jobs"
    );
    assert_eq!(
        db.query_rows("SELECT * FROM stuck_jobs WHERE locked_by = 'ghost'")
            .await,
        1,
        "stuck_jobs names the ghost's job"
    );
}
