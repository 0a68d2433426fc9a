//! Workers and leader.

use chrono::Duration;
use docket_core::{Executor, LeaderElectParams, WorkerHeartbeatParams};

use crate::harness::TestDb;

use super::{add, base_time, claim, conn, job};

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
