//! Monitoring views.

use chrono::{Duration, Utc};
use docket_core::{JobGetAvailableParams, QueueExecutor, WorkerHeartbeatParams};

use crate::harness::TestDb;

use super::{add, complete, completion, conn, failed, insert_new, job, ms};

/// The original system's monitoring views exist and mean what they did: `job_queue_stats`,
/// `failed_jobs`, `stuck_jobs` (its columns kept, `worker_lease_ms` added; a job is stuck when
/// its worker's own lease has lapsed, not after a fixed interval).
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
        // Claimed two hours ago by a worker with a fresh heartbeat: a live worker's long job,
        // not stuck.
        let heartbeat = |id: &str, lease, now| WorkerHeartbeatParams {
            id: id.to_owned(),
            hostname: "h".into(),
            pid: 1,
            queues: vec![],
            lease,
            now,
        };
        c.worker_heartbeat(heartbeat("alive", Duration::minutes(1), None))
            .await
            .expect("heartbeat");
        add(&mut c, job("mon_c", "mon-alive", due - Duration::hours(3))).await;
        assert_eq!(
            c.job_get_available(JobGetAvailableParams {
                now: Some(Utc::now() - Duration::hours(2)),
                ..claim_now("mon-alive", "alive")
            })
            .await
            .expect("claim")
            .len(),
            1
        );
        // Claimed by a worker whose own lease (one second) lapsed four seconds ago: stuck at
        // once, however recent a fixed interval would find it.
        c.worker_heartbeat(heartbeat(
            "lapsed",
            Duration::seconds(1),
            Some(Utc::now() - Duration::seconds(5)),
        ))
        .await
        .expect("heartbeat");
        add(&mut c, job("mon_d", "mon-lapsed", due)).await;
        assert_eq!(
            c.job_get_available(claim_now("mon-lapsed", "lapsed"))
                .await
                .expect("claim")
                .len(),
            1
        );
    }
    // (mon_a, mon, queued), (mon_b, mon-failed, failed), (mon_b, mon-stuck, running),
    // (mon_c, mon-alive, queued), (mon_c, mon-alive, running), (mon_d, mon-lapsed, running)
    assert_eq!(
        db.query_rows("SELECT * FROM job_queue_stats").await,
        6,
        "job_queue_stats"
    );
    assert_eq!(
        db.query_rows("SELECT * FROM failed_jobs").await,
        1,
        "failed_jobs"
    );
    assert_eq!(
        db.query_rows("SELECT * FROM stuck_jobs").await,
        2,
        "stuck_jobs: the ghost's job and the lapsed worker's"
    );
    assert_eq!(
        db.query_rows(
            "SELECT * FROM stuck_jobs WHERE locked_by = 'ghost' \
             AND worker_heartbeat_at IS NULL AND worker_lease_ms IS NULL"
        )
        .await,
        1,
        "stuck_jobs names the ghost's job"
    );
    assert_eq!(
        db.query_rows(
            "SELECT id, document_id, job_type, queue, attempts, max_attempts, locked_by, \
             locked_at, started_at, worker_heartbeat_at, running_for, worker_lease_ms \
             FROM stuck_jobs WHERE locked_by = 'lapsed' AND worker_lease_ms = 1000 \
             AND worker_heartbeat_at IS NOT NULL AND running_for IS NOT NULL"
        )
        .await,
        1,
        "stuck_jobs shows the lapsed worker's job, its heartbeat and lease"
    );
}
