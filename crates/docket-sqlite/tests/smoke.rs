//! The driver end to end on a real database file: migrate, enqueue, claim, complete.

use chrono::{Duration, Utc};
use docket_core::{
    CompletionOutcome, Driver, Executor, JobCompleteManyParams, JobCompletion,
    JobGetAvailableParams, JobInsertManyParams, JobInsertParams, JobState, Transaction,
};
use docket_sqlite::{SqliteDriver, SqliteOptions};
use serde_json::json;

async fn open(dir: &tempfile::TempDir) -> SqliteDriver {
    let path = dir.path().join("queue.db");
    let driver = SqliteDriver::connect(&SqliteOptions::new(path.to_str().unwrap()))
        .await
        .expect("open");
    driver.migrate().await.expect("migrate");
    // Idempotent.
    driver.migrate().await.expect("migrate again");
    driver
}

#[tokio::test]
async fn insert_claim_complete() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(&dir).await;
    assert_eq!(driver.name(), "sqlite");
    driver.ping().await.unwrap();

    let mut conn = driver.conn().await.unwrap();
    let mut low = JobInsertParams::new("parse", json!({"doc": "a"}));
    low.unique_key = Some("doc-a".into());
    let mut high = JobInsertParams::new("parse", json!({"doc": "b"}));
    high.priority = 5;
    let inserted = conn
        .job_insert_many(JobInsertManyParams {
            jobs: vec![low.clone(), high, low],
        })
        .await
        .unwrap();
    assert_eq!(inserted.len(), 3);
    assert!(!inserted[0].duplicate && !inserted[1].duplicate);
    assert!(inserted[2].duplicate);
    assert_eq!(inserted[2].id, inserted[0].id);

    let now = Utc::now();
    let claimed = conn
        .job_get_available(JobGetAvailableParams {
            worker_id: "w1".into(),
            queue: "default".into(),
            limit: 10,
            now: Some(now),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // Highest priority first.
    assert_eq!(claimed[0].id, inserted[1].id);
    assert_eq!(claimed[0].status, JobState::Running);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].locked_by.as_deref(), Some("w1"));
    assert_eq!(claimed[1].payload, json!({"doc": "a"}));

    let done = conn
        .job_complete_many(JobCompleteManyParams {
            completions: claimed
                .iter()
                .map(|j| JobCompletion {
                    id: j.id,
                    attempt: j.attempts,
                    worker_id: "w1".into(),
                    started_at: now,
                    finished_at: now + Duration::milliseconds(12),
                    outcome: CompletionOutcome::Completed,
                })
                .collect(),
        })
        .await
        .unwrap();
    assert_eq!(done, vec![claimed[0].id, claimed[1].id]);

    // A second completion of the same attempt is refused.
    let again = conn
        .job_complete_many(JobCompleteManyParams {
            completions: vec![JobCompletion {
                id: claimed[0].id,
                attempt: 1,
                worker_id: "w1".into(),
                started_at: now,
                finished_at: now,
                outcome: CompletionOutcome::Failed {
                    error: "late".into(),
                },
            }],
        })
        .await
        .unwrap();
    assert!(again.is_empty());

    let job = conn.job_get(claimed[0].id).await.unwrap().unwrap();
    assert_eq!(job.status, JobState::Completed);
    assert!(job.locked_by.is_none());
    let attempts = conn.job_attempt_list(job.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].duration_ms, 12);
    drop(conn);

    // The monitoring views answer, and the connection runs as configured.
    for view in ["job_queue_stats", "failed_jobs", "stuck_jobs"] {
        sqlx::query(&format!("SELECT * FROM {view}"))
            .fetch_all(driver.pool())
            .await
            .unwrap();
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(driver.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: bool = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(driver.pool())
        .await
        .unwrap();
    assert!(fk);
}

#[tokio::test]
async fn transaction_commits_or_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let driver = open(&dir).await;

    let mut tx = driver.begin().await.unwrap();
    let ids = tx
        .job_insert_many(JobInsertManyParams {
            jobs: vec![JobInsertParams::new("a", json!({}))],
        })
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut conn = driver.conn().await.unwrap();
    assert!(conn.job_get(ids[0].id).await.unwrap().is_none());
    drop(conn);

    let wakeups = driver.wakeups();
    let woken = wakeups.notify().notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    let mut tx = driver.begin().await.unwrap();
    let ids = tx
        .job_insert_many(JobInsertManyParams {
            jobs: vec![JobInsertParams::new("a", json!({}))],
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(1), woken)
        .await
        .expect("woken after commit");
    let mut conn = driver.conn().await.unwrap();
    assert!(conn.job_get(ids[0].id).await.unwrap().is_some());
}
