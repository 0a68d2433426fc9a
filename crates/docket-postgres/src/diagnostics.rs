//! What the reliability drills ask of PostgreSQL beyond the executor: the database's own
//! statistics, a snapshot held open, connections cut, tables vacuumed. Not used by the engine.

use chrono::{DateTime, Utc};
use docket_core::Result;
use sqlx::{Postgres, Transaction};

use crate::PgDriver;
use crate::exec::map_err;

/// A table's size and rows, from `pg_stat_user_tables`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    /// The table.
    pub name: String,
    /// Its size with indexes and TOAST, in bytes.
    pub total_bytes: i64,
    /// Its indexes' size, in bytes.
    pub index_bytes: i64,
    /// Live rows (estimated).
    pub live_rows: i64,
    /// Dead row versions not yet vacuumed (estimated).
    pub dead_rows: i64,
    /// Autovacuum runs.
    pub autovacuums: i64,
}

/// A transaction holding a snapshot open: vacuum keeps every row version that dies after it
/// began, as a long report or an idle `BEGIN` would. Ended by [`HeldSnapshot::release`] (or
/// rolled back when dropped).
pub struct HeldSnapshot(Transaction<'static, Postgres>);

impl HeldSnapshot {
    /// Ends it.
    pub async fn release(self) -> Result<()> {
        self.0.rollback().await.map_err(map_err)
    }
}

impl PgDriver {
    /// Sizes and rows of `tables` in this schema, by name.
    pub async fn table_stats(&self, tables: &[&str]) -> Result<Vec<TableStats>> {
        let names: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
        let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT relname::text, pg_total_relation_size(relid), pg_indexes_size(relid), \
                    n_live_tup, n_dead_tup, autovacuum_count \
             FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname = ANY($1) \
             ORDER BY relname",
        )
        .bind(&names)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(
                |(name, total_bytes, index_bytes, live_rows, dead_rows, autovacuums)| TableStats {
                    name,
                    total_bytes,
                    index_bytes,
                    live_rows,
                    dead_rows,
                    autovacuums,
                },
            )
            .collect())
    }

    /// Opens a transaction that holds its snapshot until released.
    pub async fn hold_snapshot(&self) -> Result<HeldSnapshot> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query("SELECT txid_current()")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        Ok(HeldSnapshot(tx))
    }

    /// `VACUUM ANALYZE` of each of `tables` (names the caller controls).
    pub async fn vacuum_analyze(&self, tables: &[&str]) -> Result<()> {
        for t in tables {
            sqlx::query(&format!("VACUUM ANALYZE {t}"))
                .execute(self.pool())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    /// A server setting, as `SHOW` prints it.
    pub async fn setting(&self, name: &str) -> Result<String> {
        sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(self.pool())
            .await
            .map_err(map_err)
    }

    /// Terminates the server's other connections whose `application_name` is `name` (a
    /// drill's processes). Returns how many.
    pub async fn terminate_connections(&self, name: &str) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()) t",
        )
        .bind(name)
        .fetch_one(self.pool())
        .await
        .map_err(map_err)
    }

    /// Seconds from creation to completion of the documents completed after `since`.
    pub async fn completion_latencies(&self, since: DateTime<Utc>) -> Result<Vec<f64>> {
        sqlx::query_scalar(
            "SELECT extract(epoch FROM completed_at - created_at)::float8 FROM documents \
             WHERE completed_at > $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)
    }
}
