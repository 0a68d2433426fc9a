//! Workers and leader.

use chrono::Duration;
use docket_core::{
    LeaderElectParams, QueueExecutor, WorkerDeleteStaleParams, WorkerHeartbeatParams,
    WorkerListParams,
};

use crate::harness::TestDb;

use super::{add, base_time, claim, conn, job};

/// Heartbeats create then update workers (their lease included); listing, each worker judged
/// by its own lease; deleting; deleting dead ones that hold no running job.
pub async fn workers<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let hb = |id: &str, host: &str, queues: &[&str], lease, now| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: host.to_owned(),
        pid: 4242,
        queues: queues.iter().map(|q| q.to_string()).collect(),
        lease,
        now: Some(now),
    };
    let at = |now| WorkerListParams { now: Some(now) };

    c.worker_heartbeat(hb("w1", "h1", &["a", "b"], s(30), t0))
        .await
        .expect("heartbeat");
    let ws = c.worker_list(at(t0)).await.expect("worker_list");
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].id, "w1");
    assert_eq!(ws[0].hostname, "h1");
    assert_eq!(ws[0].pid, 4242);
    assert_eq!(ws[0].queues, ["a", "b"]);
    assert_eq!(ws[0].started_at, t0);
    assert_eq!(ws[0].heartbeat_at, t0);
    assert_eq!(ws[0].lease_ms, 30_000);
    assert_eq!(ws[0].lease_expires_at(), t0 + s(30));
    assert!(!ws[0].dead);
    // Dead once its own lease has passed, not at its edge.
    let dead_at =
        |ws: &[docket_core::WorkerRow], id: &str| ws.iter().find(|w| w.id == id).map(|w| w.dead);
    let ws = c.worker_list(at(t0 + s(30))).await.expect("worker_list");
    assert_eq!(dead_at(&ws, "w1"), Some(false), "at the edge of its lease");
    let ws = c
        .worker_list(at(t0 + s(30) + Duration::milliseconds(1)))
        .await
        .expect("worker_list");
    assert_eq!(dead_at(&ws, "w1"), Some(true), "past its lease");

    // A heartbeat moves heartbeat_at, the queues and the lease; not started_at.
    c.worker_heartbeat(hb("w1", "h1", &["a"], s(90), t0 + s(30)))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("w2", "h2", &[], s(5), t0 + s(10)))
        .await
        .expect("heartbeat");
    let ws = c.worker_list(at(t0 + s(60))).await.expect("worker_list");
    let names: Vec<_> = ws.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(names, ["w1", "w2"], "most recent heartbeat first");
    assert_eq!(ws[0].started_at, t0, "a heartbeat moved started_at");
    assert_eq!(ws[0].heartbeat_at, t0 + s(30), "heartbeat_at did not move");
    assert_eq!(ws[0].queues, ["a"]);
    assert_eq!(ws[0].lease_ms, 90_000, "the lease did not move");
    assert!(ws[1].queues.is_empty());
    // Each by its own lease: w1 (90 s) lives at t0 + 60 s, w2 (5 s) died at t0 + 15 s.
    assert_eq!(ws.iter().map(|w| w.dead).collect::<Vec<_>>(), [false, true]);

    c.worker_delete("w2").await.expect("worker_delete");
    c.worker_delete("never-existed")
        .await
        .expect("worker_delete of an unknown worker");
    let ws = c.worker_list(at(t0)).await.expect("worker_list");
    assert_eq!(ws.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["w1"]);

    // Dead workers go, unless they still hold a running job (the rescuer takes those first);
    // live ones stay however long ago they heartbeated.
    let old = t0 - Duration::minutes(10);
    c.worker_heartbeat(hb("busy", "h3", &["st"], s(30), old))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("idle", "h4", &["st"], s(30), old))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("patient", "h5", &["st"], Duration::hours(1), old))
        .await
        .expect("heartbeat");
    c.worker_heartbeat(hb("edge", "h6", &["st"], s(30), t0 - s(30)))
        .await
        .expect("heartbeat");
    add(&mut c, job("s", "st", old)).await;
    claim(&mut c, "st", "busy", 1, old).await;
    let n = c
        .worker_delete_stale(WorkerDeleteStaleParams { now: Some(t0) })
        .await
        .expect("worker_delete_stale");
    assert_eq!(n, 1, "only 'idle' is dead and free");
    let mut left: Vec<_> = c
        .worker_list(at(t0))
        .await
        .expect("worker_list")
        .into_iter()
        .map(|w| (w.id, w.dead))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ("busy".to_owned(), true),
            ("edge".to_owned(), false),
            ("patient".to_owned(), false),
            ("w1".to_owned(), false),
        ]
    );
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
