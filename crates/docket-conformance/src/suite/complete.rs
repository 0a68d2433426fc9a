//! Completion: outcomes, guarded finalisation, the attempt list.

use chrono::Duration;
use docket_core::{
    AttemptOutcome, CompletionOutcome, JobRetryParams, JobState, QueueExecutor,
    WorkerHeartbeatParams,
};

use crate::harness::TestDb;

use super::{
    add, assert_attempt, attempts, base_time, claim, complete, completion, conn, get, ids_of,
    insert_new, job, ms, rescue_expired, retry_jobs,
};

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
        lease,
        now: Some(now),
    };
    let r = add(&mut c, job("g", "g2", t0)).await;
    c.worker_heartbeat(hb("old", t0)).await.expect("heartbeat");
    claim(&mut c, "g2", "old", 1, t0).await;
    let t1 = t0 + Duration::minutes(10);
    let rescued = rescue_expired(&mut c, t1, 10).await;
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
    assert_eq!(
        got[0].attempts, 3,
        "attempt numbers go on after a manual retry"
    );
    let c3 = completion(
        id,
        3,
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
            (3, AttemptOutcome::Completed, t0 + s(6)),
        ],
        "job_attempt_list must be oldest first"
    );
}

/// Attempt numbers repeat (a release gives one back), so the guard is the claim's token, not
/// the attempt number: a completion from a worker that no longer holds the job is refused even
/// when its attempt number matches.
pub async fn completion_by_another_worker_is_refused<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let id = add(&mut c, job("guard", "guard", t0 - Duration::minutes(1))).await;
    let claimed = claim(&mut c, "guard", "holder", 1, t0).await;
    assert_eq!(ids_of(&claimed), vec![id]);
    let stranger = completion(
        id,
        1,
        "stranger",
        t0,
        t0 + ms(5),
        CompletionOutcome::Completed,
    );
    assert!(complete(&mut c, vec![stranger]).await.is_empty());
    assert_eq!(get(&mut c, id).await.status, JobState::Running);
    assert!(attempts(&mut c, id).await.is_empty());
    let holder = completion(
        id,
        1,
        "holder",
        t0,
        t0 + ms(5),
        CompletionOutcome::Completed,
    );
    assert_eq!(complete(&mut c, vec![holder]).await, vec![id]);
    assert_eq!(get(&mut c, id).await.status, JobState::Completed);
}
