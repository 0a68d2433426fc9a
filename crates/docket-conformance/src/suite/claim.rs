//! Claim: order and limit, named queues, concurrent claims, paused queues.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use docket_core::{JobState, QueueDriver, QueueExecutor, QueueRow, QueueSetPausedParams};
use serde_json::json;

use crate::harness::TestDb;

use super::{all_jobs, base_time, claim, conn, get, ids_of, insert_new, job};

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
