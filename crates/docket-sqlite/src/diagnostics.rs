//! What the reliability drills ask of SQLite beyond the executor: the file's own figures, a
//! read transaction held open by another connection, the write-ahead log checkpointed. Not
//! used by the engine.

use chrono::{DateTime, Utc};
use docket_core::{Error, Result};
use sqlx::{Connection, SqliteConnection};

use crate::SqliteDriver;
use crate::exec::map_err;
use crate::rows::micros;

/// The database's pages and `tables`' rows.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStats {
    /// Bytes of the pages the file keeps free for reuse.
    pub free_bytes: i64,
    /// Rows of each table asked for, by name.
    pub rows: Vec<(String, i64)>,
}

/// A read transaction on a connection of its own, as another process (a backup, a `sqlite3`
/// shell left in `BEGIN`) would hold: no checkpoint can go past its snapshot. Ended by
/// [`HeldRead::release`].
pub struct HeldRead(SqliteConnection);

impl HeldRead {
    /// Ends it and closes its connection.
    pub async fn release(mut self) -> Result<()> {
        sqlx::query("ROLLBACK")
            .execute(&mut self.0)
            .await
            .map_err(map_err)?;
        self.0.close().await.map_err(map_err)
    }
}

impl SqliteDriver {
    /// Free pages, and the rows of `tables` (names the caller controls).
    pub async fn file_stats(&self, tables: &[&str]) -> Result<FileStats> {
        let pragma = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.pool())
                .await
                .map_err(map_err)
        };
        let free_bytes =
            pragma("PRAGMA page_size").await? * pragma("PRAGMA freelist_count").await?;
        let mut rows = Vec::with_capacity(tables.len());
        for t in tables {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
                .fetch_one(self.pool())
                .await
                .map_err(map_err)?;
            rows.push(((*t).to_owned(), n));
        }
        Ok(FileStats { free_bytes, rows })
    }

    /// Opens a read transaction on a new connection to the file at `path`, and takes its
    /// snapshot.
    pub async fn hold_read(&self, path: &std::path::Path) -> Result<HeldRead> {
        let mut c = SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
        )
        .await
        .map_err(map_err)?;
        sqlx::query("BEGIN")
            .execute(&mut c)
            .await
            .map_err(map_err)?;
        // The first read takes the snapshot.
        sqlx::query("SELECT count(*) FROM documents")
            .execute(&mut c)
            .await
            .map_err(map_err)?;
        Ok(HeldRead(c))
    }

    /// Checkpoints the write-ahead log into the file and truncates it; an error when a reader
    /// kept it from finishing.
    pub async fn checkpoint_truncate(&self) -> Result<()> {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        if busy != 0 {
            return Err(Error::Unavailable(
                "the checkpoint could not finish: a reader holds the log".into(),
            ));
        }
        Ok(())
    }

    /// `journal_size_limit`, in bytes.
    pub async fn journal_size_limit(&self) -> Result<i64> {
        sqlx::query_scalar("PRAGMA journal_size_limit")
            .fetch_one(self.pool())
            .await
            .map_err(map_err)
    }

    /// Seconds from creation to completion of the documents completed after `since`.
    pub async fn completion_latencies(&self, since: DateTime<Utc>) -> Result<Vec<f64>> {
        sqlx::query_scalar(
            "SELECT (completed_at - created_at) / 1e6 FROM documents WHERE completed_at > ?1",
        )
        .bind(micros(since))
        .fetch_all(self.pool())
        .await
        .map_err(map_err)
    }
}
