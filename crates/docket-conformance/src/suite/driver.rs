//! The driver itself: name, ping, migrate, an empty database, empty calls.

use docket_core::{DEFAULT_QUEUE, QueueDriver, QueueExecutor};

use crate::harness::TestDb;

use super::{all_jobs, base_time, cancel_jobs, claim, complete, conn, insert};

/// `name`, `ping`, idempotent `migrate` (nothing pending after it); a fresh database is empty; empty calls are no-ops.
pub async fn driver_basics<T: TestDb>(db: &T) {
    let d = db.driver();
    assert_eq!(d.name(), db.backend(), "Driver::name");
    d.ping().await.expect("ping");
    d.migrate()
        .await
        .expect("migrate a second time (must be idempotent)");
    assert_eq!(
        d.pending_migrations().await.expect("pending_migrations"),
        Vec::<i64>::new(),
        "a migrated database has no pending migrations"
    );

    let mut c = conn(db).await;
    assert!(
        all_jobs(&mut c).await.is_empty(),
        "a fresh database has jobs"
    );
    assert!(c.queue_list().await.expect("queue_list").is_empty());
    assert!(
        c.worker_list(Default::default())
            .await
            .expect("worker_list")
            .is_empty()
    );
    assert!(
        c.cron_schedule_list()
            .await
            .expect("cron_schedule_list")
            .is_empty()
    );
    assert!(c.leader_get(None).await.expect("leader_get").is_none());
    assert!(c.job_stats().await.expect("job_stats").is_empty());
    assert!(insert(&mut c, vec![]).await.is_empty());
    assert!(complete(&mut c, vec![]).await.is_empty());
    assert!(cancel_jobs(&mut c, vec![], base_time()).await.is_empty());
    assert!(
        claim(&mut c, DEFAULT_QUEUE, "w", 10, base_time())
            .await
            .is_empty()
    );
}
