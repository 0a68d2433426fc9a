//! The [`SessionStore`] part of the executor: dashboard sessions.

use std::ops::DerefMut;

use chrono::{DateTime, Utc};
use docket_core::*;
use sqlx::{Connection, PgConnection};

use crate::exec::{PgExec, map_err};

impl<C> SessionStore for PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    async fn session_insert(&mut self, p: &SessionInsertParams) -> Result<()> {
        let mut tx = self.conn.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM docket_sessions WHERE expires_at <= $1")
            .bind(p.now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO docket_sessions (token_sha256, key_name, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&p.token_sha256)
        .bind(&p.key_name)
        .bind(p.now)
        .bind(p.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn session_get(
        &mut self,
        token_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRow>> {
        let row: Option<(String, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT token_sha256, key_name, created_at, expires_at FROM docket_sessions \
             WHERE token_sha256 = $1 AND expires_at > $2",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *self.conn)
        .await
        .map_err(map_err)?;
        Ok(row.map(
            |(token_sha256, key_name, created_at, expires_at)| SessionRow {
                token_sha256,
                key_name,
                created_at,
                expires_at,
            },
        ))
    }

    async fn session_delete(&mut self, token_sha256: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM docket_sessions WHERE token_sha256 = $1")
            .bind(token_sha256)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_delete_for_key(&mut self, key_name: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM docket_sessions WHERE key_name = $1")
            .bind(key_name)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
