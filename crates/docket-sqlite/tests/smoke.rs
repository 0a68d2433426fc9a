//! The driver end to end on a real database file: migrate, enqueue, claim, complete.

use chrono::{Duration, Utc};
use docket_core::{
    CompletionOutcome, JobCompleteManyParams, JobCompletion, JobGetAvailableParams,
    JobInsertManyParams, JobInsertParams, JobState, QueueDriver, QueueExecutor, Transaction,
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
                    claim_token: j.claim_token.expect("a claim has a token"),
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
                claim_token: claimed[0].claim_token.expect("a claim has a token"),
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

/// A database at version 2 keeps every document, text and chunk through version 3, which
/// rebuilds the documents table (foreign keys off while it does, so nothing cascades), and
/// then accepts the `cancelled` status.
#[tokio::test]
async fn upgrade_from_version_2_keeps_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = dir.path().join("v2");
    std::fs::create_dir(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in ["0001_queue.sql", "0002_documents.sql"] {
        std::fs::copy(here.join(name), old.join(name)).unwrap();
    }
    let driver = SqliteDriver::connect(&SqliteOptions::new(path.to_str().unwrap()))
        .await
        .expect("open");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("the version 2 migrations")
        .run(driver.pool())
        .await
        .expect("migrate to version 2");
    let id = "0190a0b0-0000-7000-8000-000000000001";
    for sql in [
        "INSERT INTO documents (id, source, size_bytes, sha256, storage_key, status, active_generation, created_at, updated_at) \
         VALUES ('ID', 'upload', 3, 'abc', 'k', 'completed', 1, 1, 1)",
        "INSERT INTO document_texts (document_id, generation, format, text) VALUES ('ID', 1, 'txt', 'hey')",
        "INSERT INTO document_chunks (document_id, generation, chunk_index, text, char_start, char_end, token_count) \
         VALUES ('ID', 1, 0, 'hey', 0, 3, 1)",
    ] {
        sqlx::query(&sql.replace("ID", id))
            .execute(driver.pool())
            .await
            .expect(sql);
    }
    assert!(driver.pending_migrations().await.unwrap().contains(&3));

    driver
        .migrate()
        .await
        .expect("migrate to the current version");
    assert!(driver.pending_migrations().await.unwrap().is_empty());
    for (table, n) in [
        ("documents", 1),
        ("document_texts", 1),
        ("document_chunks", 1),
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(driver.pool())
            .await
            .unwrap();
        assert_eq!(count, n, "{table} kept its rows");
    }
    let fk: i64 = sqlx::query_scalar("SELECT foreign_keys FROM pragma_foreign_keys")
        .fetch_one(driver.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are on again");
    sqlx::query("UPDATE documents SET status = 'cancelled' WHERE id = ?1")
        .bind(id)
        .execute(driver.pool())
        .await
        .expect("the cancelled status is allowed");
    // Deleting the document still cascades into its texts and chunks.
    sqlx::query("DELETE FROM documents WHERE id = ?1")
        .bind(id)
        .execute(driver.pool())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM document_chunks")
        .fetch_one(driver.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}
