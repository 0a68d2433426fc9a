//! Reading: job stats and the job list.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use docket_core::{
    Executor, JobActivityParams, JobInsertParams, JobListParams, JobState, JobThroughputParams,
};
use uuid::Uuid;

use crate::harness::TestDb;

use super::{
    add, assert_near, base_time, claim, conn, failed, finish, ids_of, insert_new, job, list,
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
    use chrono::DurationRound;
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
