//! Monitoring views.

use chrono::{Duration, Utc};
use docket_core::{Executor, JobGetAvailableParams, WorkerHeartbeatParams};

use crate::harness::TestDb;

use super::{add, complete, completion, conn, failed, insert_new, job, ms};

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
