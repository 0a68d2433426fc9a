//! The write-ahead log behind a long read: it grows while another connection (another
//! process, say a backup) holds a read transaction open, and is cut back to
//! `wal_size_limit` once that reader is gone instead of keeping its largest size.

use docket_core::{JobInsertManyParams, JobInsertParams, QueueDriver, QueueExecutor};
use docket_sqlite::{SqliteDriver, SqliteOptions};
use serde_json::json;
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// Enqueues 100 jobs with about 1 KB of payload each.
async fn write_some(driver: &SqliteDriver) {
    let mut c = driver.conn().await.unwrap();
    let jobs = (0..100)
        .map(|i| JobInsertParams::new("wal.test", json!({ "i": i, "pad": "x".repeat(1000) })))
        .collect();
    c.job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap();
}

#[tokio::test]
async fn wal_is_cut_back_after_a_long_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let mut opts = SqliteOptions::new(path.to_str().unwrap());
    opts.wal_size_limit = 512 * 1024;
    let driver = SqliteDriver::connect(&opts).await.unwrap();
    driver.migrate().await.unwrap();
    let wal = dir.path().join("wal.db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());

    let mut reader = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    // The first read takes the snapshot that checkpoints cannot go past.
    sqlx::query("SELECT count(*) FROM processing_jobs")
        .execute(&mut reader)
        .await
        .unwrap();
    for _ in 0..40 {
        write_some(&driver).await;
    }
    let grown = wal_size();
    // Past what automatic checkpoints (every 1,000 pages) let it reach without a reader.
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert!(
        grown > 1000 * page_size as u64 + opts.wal_size_limit,
        "the log grows behind the reader: {grown} bytes"
    );

    sqlx::query("ROLLBACK").execute(&mut reader).await.unwrap();
    reader.close().await.unwrap();
    // Checkpoints catch up, the log starts over, and is cut back.
    let mut writes = 0;
    while wal_size() > opts.wal_size_limit {
        assert!(
            writes < 20,
            "the log stays at {} bytes after the reader left (it grew to {grown})",
            wal_size()
        );
        write_some(&driver).await;
        writes += 1;
    }
}
