//! Reading: job stats and the job list.

use std::collections::BTreeSet;

use chrono::DurationRound;
use chrono::{Duration, Utc};
use docket_core::{
    CompletionOutcome, JobActivityParams, JobInsertParams, JobListParams, JobRetryParams, JobState,
    JobThroughputParams, QueueExecutor,
};
use uuid::Uuid;

use crate::harness::TestDb;

use super::{
    add, assert_near, base_time, claim, conn, failed, finish, get, ids_of, insert_new, job, list,
    retry_jobs,
};

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

/// `job_activity`: completions and dead letters in the last minute and hour, by kind and
/// queue, and the oldest due job's `run_at` (jobs not yet due do not count).
pub async fn job_activity<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let now = t0 + Duration::seconds(2);
    // Each finished at `at + 1 s`.
    let done = [
        ("a", "act1", t0, None), // completed, last minute
        ("a", "act1", t0 - Duration::seconds(10), Some("x")), // failed, last minute
        ("a", "act1", t0 - Duration::minutes(30), None), // completed, last hour
        ("a", "act1", t0 - Duration::minutes(40), Some("y")), // failed, last hour
        ("a", "act1", t0 - Duration::hours(2), None), // too old
        ("a", "act2", t0 - Duration::minutes(5), None), // another queue
    ];
    for (i, (kind, queue, at, error)) in done.iter().enumerate() {
        // Alone in a queue of its own, so that `finish` claims exactly this job.
        let solo = format!("{queue}-{i}");
        add(&mut c, job(kind, &solo, *at)).await;
        let outcome = match error {
            Some(e) => failed(e),
            None => docket_core::CompletionOutcome::Completed,
        };
        finish(&mut c, &solo, *at, outcome).await;
    }
    add(&mut c, job("b", "actw", t0 - Duration::minutes(5))).await;
    add(&mut c, job("b", "actw", t0 - Duration::minutes(1))).await;
    add(&mut c, job("b", "actw", t0 + Duration::hours(1))).await; // not due yet
    add(&mut c, job("c", "actf", t0 + Duration::hours(1))).await; // nothing due, nothing done

    let rows = c
        .job_activity(JobActivityParams { now: Some(now) })
        .await
        .expect("job_activity");
    let find = |t: &str, q: &str| rows.iter().find(|r| r.job_type == t && r.queue == q);
    let counts = |r: &docket_core::JobActivityRow| {
        (
            r.completed_last_minute,
            r.failed_last_minute,
            r.completed_last_hour,
            r.failed_last_hour,
        )
    };
    let per_queue: Vec<_> = (0..done.len())
        .map(|i| {
            let (kind, queue, ..) = done[i];
            find(kind, &format!("{queue}-{i}")).map(counts)
        })
        .collect();
    assert_eq!(
        per_queue,
        vec![
            Some((1, 0, 1, 0)),
            Some((0, 1, 0, 1)),
            Some((0, 0, 1, 0)),
            Some((0, 0, 0, 1)),
            None,
            Some((0, 0, 1, 0)),
        ],
        "rows: {rows:?}"
    );
    for i in [0, 1, 2, 3, 5] {
        let (kind, queue, ..) = done[i];
        assert_eq!(
            find(kind, &format!("{queue}-{i}")).and_then(|r| r.oldest_due_at),
            None,
            "nothing waits in a queue whose jobs are done"
        );
    }
    let waiting = find("b", "actw").expect("a row for due jobs");
    assert_eq!(counts(waiting), (0, 0, 0, 0));
    assert_eq!(waiting.oldest_due_at, Some(t0 - Duration::minutes(5)));
    assert!(
        find("c", "actf").is_none(),
        "a kind with nothing due or done: {rows:?}"
    );
}

/// `job_throughput`: completions and dead letters per minute between `since` and `now`,
/// oldest minute first, minutes with nothing finished left out.
pub async fn job_throughput<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let m0 = (base_time() - Duration::hours(3))
        .duration_trunc(Duration::minutes(1))
        .expect("a minute boundary");
    let now = m0 + Duration::minutes(10);
    // Each finished at `at + 1 s`.
    let done = [
        (m0 + Duration::seconds(10), None),      // minute 0
        (m0 + Duration::seconds(40), Some("x")), // minute 0, failed
        (m0 + Duration::minutes(5) + Duration::seconds(30), None), // minute 5
        (m0 - Duration::minutes(1), None),       // before `since`
        (m0 + Duration::minutes(20), None),      // after `now`
    ];
    for (i, (at, error)) in done.iter().enumerate() {
        let solo = format!("tput-{i}");
        add(&mut c, job("a", &solo, *at)).await;
        let outcome = match error {
            Some(e) => failed(e),
            None => docket_core::CompletionOutcome::Completed,
        };
        finish(&mut c, &solo, *at, outcome).await;
    }
    add(&mut c, job("a", "tput-waiting", m0)).await; // never finishes

    let rows = c
        .job_throughput(JobThroughputParams {
            since: m0,
            now: Some(now),
        })
        .await
        .expect("job_throughput");
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.minute, r.completed, r.failed))
        .collect();
    assert_eq!(
        got,
        vec![(m0, 1, 1), (m0 + Duration::minutes(5), 1, 0)],
        "rows: {rows:?}"
    );
}

/// Failures are counted from the attempts that dead-lettered their job, by when each ended: a
/// dead letter retried by hand to success stays in the hour's failures (and the chart's minute),
/// next to its later completion; a rescue on the last allowed attempt is a failure; attempts
/// that fail with attempts left (retried, or rescued before the last) are not.
pub async fn failures_outlive_a_retry<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let m = Duration::minutes;
    let now = t0 + Duration::seconds(2);
    let early = t0 - Duration::hours(2);
    let with_max = |queue: &str, max| {
        let mut j = job("fh", queue, early);
        j.max_attempts = max;
        j
    };
    // A dead letter at t0 - 10 min (ending 1 s later), retried by hand and completed.
    let a = add(&mut c, with_max("fh-dead", 4)).await;
    finish(&mut c, "fh-dead", t0 - m(10), failed("boom")).await;
    let retried = retry_jobs(
        &mut c,
        JobRetryParams {
            ids: vec![a],
            now: Some(t0 - m(5)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(retried, vec![a]);
    finish(&mut c, "fh-dead", t0 - m(4), CompletionOutcome::Completed).await;
    assert_eq!(get(&mut c, a).await.status, JobState::Completed);
    // A retryable failure, then success: not a failure of the job.
    add(&mut c, with_max("fh-retry", 4)).await;
    finish(
        &mut c,
        "fh-retry",
        t0 - m(20),
        CompletionOutcome::Retry {
            run_at: t0 - m(19),
            error: "flaky".into(),
        },
    )
    .await;
    finish(&mut c, "fh-retry", t0 - m(19), CompletionOutcome::Completed).await;
    // Two jobs of a worker that died: one on its last allowed attempt (dead-lettered by the
    // rescue), one with attempts left (requeued).
    let last = add(&mut c, with_max("fh-rescued-last", 1)).await;
    let more = add(&mut c, with_max("fh-rescued-more", 3)).await;
    for q in ["fh-rescued-last", "fh-rescued-more"] {
        assert_eq!(claim(&mut c, q, "gone", 1, t0 - m(31)).await.len(), 1);
    }
    let res = super::rescue_expired(&mut c, t0 - m(30), 10).await;
    assert_eq!((res.failed, res.requeued), (vec![last], vec![more]));

    let rows = c
        .job_activity(JobActivityParams { now: Some(now) })
        .await
        .expect("job_activity");
    let counts = |q: &str| {
        rows.iter()
            .find(|r| r.job_type == "fh" && r.queue == q)
            .map(|r| {
                (
                    r.completed_last_minute,
                    r.failed_last_minute,
                    r.completed_last_hour,
                    r.failed_last_hour,
                )
            })
    };
    assert_eq!(counts("fh-dead"), Some((0, 0, 1, 1)), "rows: {rows:?}");
    assert_eq!(counts("fh-retry"), Some((0, 0, 1, 0)), "rows: {rows:?}");
    assert_eq!(
        counts("fh-rescued-last"),
        Some((0, 0, 0, 1)),
        "rows: {rows:?}"
    );
    // Requeued and due: a row for its wait, with no failure.
    assert_eq!(
        counts("fh-rescued-more"),
        Some((0, 0, 0, 0)),
        "rows: {rows:?}"
    );
    // In the last minute: the failure counts where its attempt ended.
    let late = c
        .job_activity(JobActivityParams {
            now: Some(t0 - m(10) + Duration::seconds(30)),
        })
        .await
        .expect("job_activity");
    let dead = late
        .iter()
        .find(|r| r.queue == "fh-dead")
        .expect("a row for the dead letter");
    assert_eq!((dead.failed_last_minute, dead.failed_last_hour), (1, 1));

    let minute = |t: chrono::DateTime<Utc>| {
        t.duration_trunc(Duration::minutes(1))
            .expect("a minute boundary")
    };
    let tput = c
        .job_throughput(JobThroughputParams {
            since: minute(t0 - Duration::hours(1)),
            now: Some(now),
        })
        .await
        .expect("job_throughput");
    let got: Vec<_> = tput
        .iter()
        .map(|r| (r.minute, r.completed, r.failed))
        .collect();
    let one_s = Duration::seconds(1);
    let mut want = vec![
        (minute(t0 - m(30)), 0, 1),         // the rescue on the last attempt
        (minute(t0 - m(19) + one_s), 1, 0), // the retried job's success
        (minute(t0 - m(10) + one_s), 0, 1), // the dead letter
        (minute(t0 - m(4) + one_s), 1, 0),  // its success after the manual retry
    ];
    want.sort();
    assert_eq!(got, want, "rows: {tput:?}");
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
