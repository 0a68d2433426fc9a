//! The [`SessionStore`] part of the executor: dashboard sessions.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::SqliteConnection;

use crate::exec::{SqliteExec, atomic, commit, map_err};
use crate::rows::{self, micros};

impl<C> SessionStore for SqliteExec<C>
where
    C: DerefMut<Target = SqliteConnection> + Send,
{
    async fn session_insert(&mut self, p: &SessionInsertParams) -> Result<()> {
        let mut tx = atomic(&mut self.conn).await?;
        sqlx::query("DELETE FROM docket_sessions WHERE expires_at <= ?1")
            .bind(micros(p.now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO docket_sessions (token_sha256, key_name, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&p.token_sha256)
        .bind(&p.key_name)
        .bind(micros(p.now))
        .bind(micros(p.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        commit(tx).await
    }

    async fn session_get(
        &mut self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT token_sha256, key_name, created_at, expires_at FROM docket_sessions \
             WHERE token_sha256 = ?1 AND expires_at > ?2",
        )
        .bind(token_sha256)
        .bind(micros(now))
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(map_err)?;
        row.as_ref().map(rows::session).transpose()
    }

    async fn session_delete(&mut self, token_sha256: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM docket_sessions WHERE token_sha256 = ?1")
            .bind(token_sha256)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_delete_for_key(&mut self, key_name: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM docket_sessions WHERE key_name = ?1")
            .bind(key_name)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
