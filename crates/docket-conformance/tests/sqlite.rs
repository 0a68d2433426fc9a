//! The conformance suite on SQLite: a fresh database file per test.

docket_conformance::driver_test_suite!(docket_conformance::harness::sqlite());

/// A database no one has migrated reports every migration as pending, and none after.
#[tokio::test]
async fn pending_migrations_before_and_after_migrate() {
    use docket_core::QueueDriver;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let d = docket_sqlite::SqliteDriver::connect(&docket_sqlite::SqliteOptions::new(url))
        .await
        .expect("open");
    let pending = d.pending_migrations().await.expect("pending");
    assert!(
        pending.len() >= 2,
        "every migration is pending: {pending:?}"
    );
    d.migrate().await.expect("migrate");
    assert!(d.pending_migrations().await.expect("pending").is_empty());
}
