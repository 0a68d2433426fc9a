//! The SQLite schema's migrations, embedded in the binary: one entry per file of
//! `migrations/`, in order. Written out rather than gathered by `sqlx::migrate!`, whose macro
//! crate compiles a second copy of sqlx's drivers and of tokio into every build; a test checks
//! the list against the folder, read the way sqlx reads it.

use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// Version, description (the file name's, underscores as spaces), SQL.
const FILES: &[(i64, &str, &str)] = &[
    (1, "queue", include_str!("../migrations/0001_queue.sql")),
    (
        2,
        "documents",
        include_str!("../migrations/0002_documents.sql"),
    ),
    (
        3,
        "claims audit",
        include_str!("../migrations/0003_claims_audit.sql"),
    ),
    (
        4,
        "worker lease",
        include_str!("../migrations/0004_worker_lease.sql"),
    ),
    (
        5,
        "embedder identity",
        include_str!("../migrations/0005_embedder_identity.sql"),
    ),
    (
        6,
        "chunk text index",
        include_str!("../migrations/0006_chunk_text_index.sql"),
    ),
    (
        7,
        "search index log",
        include_str!("../migrations/0007_search_index_log.sql"),
    ),
    (8, "alerts", include_str!("../migrations/0008_alerts.sql")),
    (
        9,
        "sessions",
        include_str!("../migrations/0009_sessions.sql"),
    ),
];

/// The versions, in order.
pub(crate) fn versions() -> impl Iterator<Item = i64> {
    FILES.iter().map(|f| f.0)
}

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = FILES
            .iter()
            .map(|&(version, description, sql)| {
                let (description, sql) = (description.into(), sql.into());
                Migration::new(version, description, MigrationType::Simple, sql, false)
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The migrator, as `sqlx::migrate!` would build it (locking, no missing migration ignored).
pub(crate) async fn migrator() -> Migrator {
    Migrator::new(Embedded)
        .await
        .expect("embedded migrations always resolve")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_list_is_the_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let read = Migrator::new(folder.as_path()).await.unwrap();
        let embedded = migrator().await;
        let key = |m: &Migration| (m.version, m.description.to_string(), m.checksum.to_vec());
        let read: Vec<_> = read.iter().map(key).collect();
        let embedded: Vec<_> = embedded.iter().map(key).collect();
        assert_eq!(
            embedded, read,
            "src/migrations.rs must list every file of migrations/"
        );
    }
}
