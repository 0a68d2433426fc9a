//! Manual retry, cancel, rescue, delete.

use chrono::Duration;
use docket_core::{
    AttemptOutcome, CompletionOutcome, JobDeleteFinishedParams, JobRetryParams, JobRow, JobState,
    QueueExecutor, WorkerHeartbeatParams,
};

use crate::harness::TestDb;

use super::{
    add, all_jobs, attempts, base_time, cancel_jobs, claim, complete, completion, conn, failed,
    finish, finish_claimed, get, gone, insert_new, job, keyed, rescue_expired, retry_jobs, sorted,
};

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
    for (id, spent) in [(f1, 1), (x1, 0)] {
        let j = get(&mut c, id).await;
        assert_eq!(j.status, JobState::Queued, "job {id}");
        assert_eq!(j.attempts, spent, "job {id}: attempt numbers never go back");
        assert_eq!(
            j.max_attempts,
            spent + 4,
            "job {id}: a retry grants the job's budget (its first max_attempts) again"
        );
        assert_eq!(j.claim_token, None, "job {id}");
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
    assert_eq!(
        (got[0].attempts, got[0].max_attempts),
        (2, 5),
        "a retried job runs on, with fresh attempts"
    );
    // A second retry grants the same budget again, not a doubled one.
    finish_claimed(&mut c, &got[0], t1, failed("again")).await;
    retry_jobs(
        &mut c,
        JobRetryParams {
            ids: vec![f1],
            now: Some(t1),
            ..Default::default()
        },
    )
    .await;
    let j = get(&mut c, f1).await;
    assert_eq!((j.attempts, j.max_attempts), (2, 6));

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

    // Of several finished jobs sharing a key, a bulk retry requeues the newest, whatever order
    // the backend meets them in.
    let mut shared = Vec::new();
    for q in ["r-s1", "r-s2", "r-s3"] {
        shared.push(add(&mut c, keyed(job("s", q, early), "shared-key")).await);
        finish(&mut c, q, early, failed("s")).await;
    }
    let of_kind = JobRetryParams {
        job_type: Some("s".into()),
        now: Some(t1),
        ..Default::default()
    };
    assert_eq!(
        retry_jobs(&mut c, of_kind).await,
        vec![shared[2]],
        "the newest of the jobs sharing a key"
    );
    for id in &shared[..2] {
        assert_eq!(get(&mut c, *id).await.status, JobState::Failed);
    }
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

/// Jobs of workers whose heartbeat is older than the lease they wrote with it are rescued:
/// requeued, or failed when out of attempts; live workers' jobs are left alone.
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
        lease,
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

    let res = rescue_expired(&mut c, t0, 100).await;
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

    let again = rescue_expired(&mut c, t0, 100).await;
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
        let res = rescue_expired(&mut c, t0, 2).await;
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
