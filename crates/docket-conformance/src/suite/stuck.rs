//! Stuck jobs: running jobs whose worker's own lease has lapsed.

use chrono::Duration;
use docket_core::{
    JobListStuckParams, JobState, QueueExecutor, WorkerDeleteStaleParams, WorkerHeartbeatParams,
    WorkerListParams,
};

use crate::harness::TestDb;

use super::{add, base_time, claim, conn, get, job, sorted};

/// Each worker is judged by the lease it wrote with its heartbeat, with no global constant: a
/// job whose worker's lease lapsed (or whose worker row is gone) is stuck at once, a live
/// worker's job is not however long it has run; each stuck job comes with its worker's last
/// heartbeat and lease and how long it has run. The rescuer takes back exactly the stuck jobs,
/// and the dead worker's row can go once it holds none.
pub async fn stuck_jobs_follow_worker_lease<T: TestDb>(db: &T) {
    let mut c = conn(db).await;
    let t0 = base_time();
    let s = Duration::seconds;
    let hb = |id: &str, lease, at| WorkerHeartbeatParams {
        id: id.to_owned(),
        hostname: "host".into(),
        pid: 9,
        queues: vec![],
        lease,
        now: Some(at),
    };
    // Lapsed a second ago; silent for five minutes but within its ten; heard a second ago.
    for (id, lease, at) in [
        ("lapsed", s(10), t0 - s(11)),
        ("patient", Duration::minutes(10), t0 - Duration::minutes(5)),
        ("fresh", s(30), t0 - s(1)),
    ] {
        c.worker_heartbeat(hb(id, lease, at))
            .await
            .expect("heartbeat");
    }
    let early = t0 - Duration::hours(4);
    let mut running = Vec::new();
    for (queue, worker, started) in [
        ("st-lapsed", "lapsed", t0 - s(20)),
        ("st-patient", "patient", t0 - Duration::hours(3)),
        ("st-fresh", "fresh", t0 - Duration::hours(2)),
        ("st-ghost", "ghost", t0 - s(5)), // no worker row at all
    ] {
        let id = add(&mut c, job("stk", queue, early)).await;
        assert_eq!(claim(&mut c, queue, worker, 1, started).await.len(), 1);
        running.push(id);
    }
    let [lapsed, patient, fresh, ghost] = running[..] else {
        unreachable!()
    };
    add(&mut c, job("stk", "st-waiting", early)).await; // queued: never stuck

    let stuck = |now, limit| JobListStuckParams {
        now: Some(now),
        limit,
    };
    let rows = c
        .job_list_stuck(stuck(t0, 100))
        .await
        .expect("job_list_stuck");
    let ids: Vec<i64> = rows.iter().map(|r| r.job.id).collect();
    assert_eq!(ids, vec![ghost, lapsed], "newest job first: {rows:?}");
    let l = &rows[1];
    assert_eq!(l.job, get(&mut c, lapsed).await, "the job's own fields");
    assert_eq!(l.job.status, JobState::Running);
    assert_eq!(l.job.locked_by.as_deref(), Some("lapsed"));
    assert_eq!(l.worker_heartbeat_at, Some(t0 - s(11)));
    assert_eq!(l.worker_lease_ms, Some(10_000));
    assert_eq!(l.running_for_ms, 20_000);
    let g = &rows[0];
    assert_eq!(g.job.locked_by.as_deref(), Some("ghost"));
    assert_eq!((g.worker_heartbeat_at, g.worker_lease_ms), (None, None));
    assert_eq!(g.running_for_ms, 5_000);
    assert!(
        !ids.contains(&patient) && !ids.contains(&fresh),
        "a live worker's long job is not stuck"
    );

    // At the edge of its lease a worker still lives; a millisecond later it does not.
    let edge = t0 - s(1);
    let at_edge = c
        .job_list_stuck(stuck(edge, 100))
        .await
        .expect("job_list_stuck");
    assert_eq!(
        at_edge.iter().map(|r| r.job.id).collect::<Vec<_>>(),
        vec![ghost]
    );
    let past = c
        .job_list_stuck(stuck(edge + Duration::milliseconds(1), 100))
        .await
        .expect("job_list_stuck");
    assert_eq!(
        past.iter().map(|r| r.job.id).collect::<Vec<_>>(),
        vec![ghost, lapsed]
    );
    let one = c
        .job_list_stuck(stuck(t0, 1))
        .await
        .expect("job_list_stuck");
    assert_eq!(one.len(), 1, "the limit");

    // The worker list agrees.
    let workers = c
        .worker_list(WorkerListParams { now: Some(t0) })
        .await
        .expect("worker_list");
    let mut dead: Vec<(&str, bool)> = workers.iter().map(|w| (w.id.as_str(), w.dead)).collect();
    dead.sort();
    assert_eq!(
        dead,
        [("fresh", false), ("lapsed", true), ("patient", false)]
    );

    // A dead worker's row stays while it holds a running job: the rescuer goes first.
    let forget = WorkerDeleteStaleParams { now: Some(t0) };
    assert_eq!(
        c.worker_delete_stale(forget.clone())
            .await
            .expect("worker_delete_stale"),
        0
    );
    // The rescuer takes back exactly the stuck jobs.
    let res = super::rescue_expired(&mut c, t0, 100).await;
    assert_eq!(sorted(res.requeued), sorted(vec![lapsed, ghost]));
    assert!(res.failed.is_empty());
    assert!(
        c.job_list_stuck(stuck(t0, 100))
            .await
            .expect("job_list_stuck")
            .is_empty(),
        "nothing stuck after the rescue"
    );
    // Then the dead worker's row goes; live ones stay.
    assert_eq!(
        c.worker_delete_stale(forget)
            .await
            .expect("worker_delete_stale"),
        1
    );
    let mut left: Vec<String> = c
        .worker_list(WorkerListParams { now: Some(t0) })
        .await
        .expect("worker_list")
        .into_iter()
        .map(|w| w.id)
        .collect();
    left.sort();
    assert_eq!(left, ["fresh", "patient"]);
    for id in [patient, fresh] {
        assert_eq!(get(&mut c, id).await.status, JobState::Running, "job {id}");
    }
}
