//! Choosing and opening the storage backend from the database URL.

use std::time::Duration;

use anyhow::Context;
use docket_core::{Driver, Error, QueueDriver};
use docket_postgres::{PgDriver, PgOptions};
use docket_sqlite::{SqliteDriver, SqliteOptions};

use crate::config::{Config, mask_url};

/// An opened backend.
#[derive(Clone, Debug)]
pub enum Backend {
    /// PostgreSQL.
    Postgres(PgDriver),
    /// SQLite.
    Sqlite(SqliteDriver),
}

/// Runs `$body` with `$d` bound to the concrete driver, so generic code is written once.
#[macro_export]
macro_rules! with_driver {
    ($backend:expr, |$d:ident| $body:expr) => {
        match $backend {
            $crate::backend::Backend::Postgres($d) => $body,
            $crate::backend::Backend::Sqlite($d) => $body,
        }
    };
}

impl Backend {
    /// Opens the database named by `config.database_url`.
    pub async fn open(config: &Config) -> anyhow::Result<Backend> {
        let url = &config.database_url;
        if url.starts_with("sqlite:") {
            let d = SqliteDriver::connect(&SqliteOptions::new(url.clone()))
                .await
                .with_context(|| format!("opening {}", mask_url(url)))?;
            Ok(Backend::Sqlite(d))
        } else {
            let mut o = PgOptions::new(url.clone());
            o.max_connections = config.postgres.max_connections;
            o.listen = config.postgres.listen;
            let d = PgDriver::connect(&o).with_context(|| format!("opening {}", mask_url(url)))?;
            Ok(Backend::Postgres(d))
        }
    }

    /// Opens the database for a one-shot command: a database that does not answer now fails
    /// at once, in one line that says where and why, with no retries. Then applies migrations.
    pub async fn open_now(config: &Config) -> anyhow::Result<Backend> {
        // No wake-ups to wait for: no LISTEN connection (and none of its retry warnings).
        let mut config = config.clone();
        config.postgres.listen = false;
        let config = &config;
        let b = Backend::open(config).await?;
        if let Backend::Postgres(d) = &b
            && let Err(e) = d.check_reachable(Duration::from_secs(5)).await
        {
            // The innermost cause says it best ("Connection refused", "password
            // authentication failed"); the outer layers repeat it.
            let cause = std::error::Error::source(&e)
                .map(|s| {
                    let mut s: &dyn std::error::Error = s;
                    while let Some(inner) = s.source() {
                        s = inner;
                    }
                    s.to_string()
                })
                .unwrap_or_else(|| e.to_string());
            anyhow::bail!(
                "cannot reach the database at {}: {cause}",
                mask_url(&config.database_url)
            );
        }
        b.migrate(Duration::ZERO).await?;
        Ok(b)
    }

    /// Applies migrations, retrying while the database is unreachable (it may still be
    /// starting) for up to `patience`.
    pub async fn migrate(&self, patience: Duration) -> anyhow::Result<()> {
        with_driver!(self, |d| migrate_with_retry(d, patience).await)
    }

    /// `postgres` or `sqlite`.
    pub fn name(&self) -> &'static str {
        with_driver!(self, |d| d.name())
    }
}

async fn migrate_with_retry<D: Driver>(d: &D, patience: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut wait = Duration::from_millis(200);
    loop {
        match d.migrate().await {
            Ok(()) => return Ok(()),
            Err(e @ Error::Unavailable(_)) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, "database unavailable; retrying migrations");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(anyhow::Error::new(e).context("applying migrations")),
        }
    }
}
