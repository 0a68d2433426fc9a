//! The PostgreSQL driver: production and multi-node deployments.
//!
//! Many `docket worker` processes on many hosts share one database; PostgreSQL is the whole
//! distributed engine. Claims use `FOR UPDATE SKIP LOCKED`, so workers never wait on each
//! other's rows; finalisation is guarded by state and attempt; wake-ups travel by
//! `LISTEN/NOTIFY`, with polling as the fallback for connection poolers that break `LISTEN`.
//!
//! Every SQL statement lives in `queries/`, one file per driver method.
//!
//! # pgvector, where installed
//!
//! Chunk vectors are always stored portably (`document_chunks.embedding`, little-endian
//! `f32` bytes) and searchable by a scan of [`DocumentStore::chunk_vectors_page`](docket_core::DocumentStore::chunk_vectors_page).
//! Where the [pgvector](https://github.com/pgvector/pgvector) extension is installed in the
//! database, the driver also keeps each vector as pgvector's `vector` (in
//! `document_chunks.embedding_vec`, untyped so that one column holds any dimensions), and
//! [`chunk_search`](docket_core::DocumentStore::chunk_search) answers nearest-neighbour queries in
//! the database, by cosine distance, helped by the per-dimension HNSW index that
//! [`vector_index_ensure`](docket_core::DocumentStore::vector_index_ensure) builds. docket never
//! installs the extension (that takes a superuser, and is the operator's choice): an operator
//! runs `CREATE EXTENSION vector;` in the database and restarts every docket process; the
//! first migration after that adds the column and fills it from the vectors already stored
//! (holding chunk reads and writes meanwhile, once). The driver detects the extension when it
//! migrates, or else on first use, and remembers the answer until the next migration. Without it,
//! [`vector_search_available`](docket_core::DocumentStore::vector_search_available) is false,
//! `chunk_search` answers `None` and callers fall back to the portable scan. This path is
//! exercised by the conformance suite only against a server where the extension is installed.

pub mod diagnostics;
mod documents;
mod exec;
mod migrations;
mod monitor;
mod notify;
mod rows;
mod sessions;
mod vector;

use std::sync::Arc;
use std::time::Duration;

use docket_core::{Broadcasts, Error, QueueDriver, Result, Wakeups};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use exec::PgExec;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection before reporting the database unavailable.
    pub acquire_timeout: Duration,
    /// Receive wake-ups by `LISTEN`. Turn off behind transaction-mode poolers (PgBouncer),
    /// which break `LISTEN`; workers then rely on polling alone.
    pub listen: bool,
}

impl PgOptions {
    /// Defaults for `url`: 10 connections, 5 s acquire timeout, `LISTEN` on.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            listen: true,
        }
    }
}

/// A pooled connection idle at least this long is pinged before use (see
/// [`PgDriver::connect`]); one used more recently was pinged as it came back, moments ago.
const PING_IDLE: Duration = Duration::from_secs(2);

/// The channel that carries "jobs were inserted" notifications.
pub const NOTIFY_CHANNEL: &str = "docket_jobs_inserted";

/// The channel that carries [`Broadcasts`] between processes.
pub const BROADCAST_CHANNEL: &str = "docket_broadcasts";

/// The PostgreSQL driver. Cheap to clone: clones share the pool and the wake-up tasks.
#[derive(Clone, Debug)]
pub struct PgDriver {
    pool: PgPool,
    /// Heartbeats and leader election: never queued behind handlers on `pool`.
    control: PgPool,
    wakeups: Wakeups,
    broadcasts: Broadcasts,
    notifier: notify::Notifier,
    /// pgvector, as last detected; shared with every executor.
    vector: Arc<vector::VectorSupport>,
}

impl PgDriver {
    /// Connects (lazily: the pool opens connections on demand, so a database that is down at
    /// start is reported by the first call, not here) and starts the wake-up tasks.
    pub fn connect(opts: &PgOptions) -> Result<Self> {
        let connect: PgConnectOptions = opts
            .url
            .parse()
            .map_err(|e: sqlx::Error| Error::Invalid(format!("bad database url: {e}")))?;
        // Name the connections so operators can find them in pg_stat_activity; a name given
        // in the URL (`?application_name=…`) wins.
        let connect = if connect.get_application_name().is_some() {
            connect
        } else {
            connect.application_name("docket")
        };
        // No JIT compilation: docket's statements are short, and PostgreSQL's cost estimate
        // for a page of the exact vector scan (a million chunks) started a JIT compile of
        // 297 ms for a statement that runs in 9 ms. A `jit` setting in the URL's `options`
        // wins.
        let connect = if connect.get_options().is_some_and(|o| o.contains("jit")) {
            connect
        } else {
            connect.options([("jit", "off")])
        };
        let control = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(opts.acquire_timeout)
            .connect_lazy_with(connect.clone());
        // sqlx pings every connection as it returns to the pool, and by default again as it
        // leaves: two round trips around each use, on a 2-core machine as costly as the
        // statements of a search. Only a connection idle long enough for the server to have
        // gone since its last ping is pinged again before use.
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(connect);
        Ok(Self::with_pools(pool, control, opts.listen))
    }

    /// Opens one connection, once, without the pool's retries: whether the database answers
    /// now. For one-shot commands, which should fail at once with the reason rather than wait
    /// for a server that is not there.
    pub async fn check_reachable(&self, within: Duration) -> Result<()> {
        use sqlx::Connection;
        let options = self.pool.connect_options();
        match tokio::time::timeout(within, sqlx::PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                Ok(())
            }
            Ok(Err(e)) => Err(exec::map_err(e)),
            Err(_) => Err(Error::Unavailable(
                format!("no answer within {} s", within.as_secs_f64()).into(),
            )),
        }
    }

    /// Wraps an existing pool; liveness work shares it.
    pub fn from_pool(pool: PgPool, listen: bool) -> Self {
        Self::with_pools(pool.clone(), pool, listen)
    }

    fn with_pools(pool: PgPool, control: PgPool, listen: bool) -> Self {
        let wakeups = Wakeups::default();
        let (broadcasts, notifier) = notify::Notifier::start(pool.clone(), wakeups.clone(), listen);
        Self {
            pool,
            control,
            wakeups,
            broadcasts,
            notifier,
            vector: Arc::default(),
        }
    }

    fn exec<C>(&self, conn: C, in_tx: bool) -> PgExec<C> {
        PgExec::new(conn, self.notifier.clone(), self.vector.clone(), in_tx)
    }

    /// The pool, for callers that run their own SQL next to the queue's.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl QueueDriver for PgDriver {
    type Conn = PgExec<sqlx::pool::PoolConnection<sqlx::Postgres>>;
    type Tx = PgExec<sqlx::Transaction<'static, sqlx::Postgres>>;

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn conn(&self) -> Result<Self::Conn> {
        let conn = self.pool.acquire().await.map_err(exec::map_err)?;
        Ok(self.exec(conn, false))
    }

    async fn control_conn(&self) -> Result<Self::Conn> {
        let conn = self.control.acquire().await.map_err(exec::map_err)?;
        Ok(self.exec(conn, false))
    }

    async fn begin(&self) -> Result<Self::Tx> {
        let tx = self.pool.begin().await.map_err(exec::map_err)?;
        Ok(self.exec(tx, true))
    }

    async fn migrate(&self) -> Result<()> {
        // Two processes starting together may race to migrate; sqlx takes an advisory lock.
        migrations::migrator()
            .await
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => exec::map_err(e),
                other => Error::Migration(Box::new(other)),
            })?;
        // pgvector, when the operator installed it: its column (added once; the check runs
        // first so that a migrated schema takes no table lock), then the answer, remembered.
        let mut conn = self.pool.acquire().await.map_err(exec::map_err)?;
        let ext = vector::detect(&mut conn, true).await?;
        match &ext {
            Some(_) => {
                tracing::info!("pgvector is installed: chunk vectors are searched in the database")
            }
            None => tracing::debug!("pgvector is not installed: chunk vectors are scanned"),
        }
        self.vector.set(ext);
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        // No table yet: nothing applied.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .or_else(|e| match &e {
                    sqlx::Error::Database(d) if d.message().contains("does not exist") => {
                        Ok(Vec::new())
                    }
                    _ => Err(exec::map_err(e)),
                })?;
        Ok(migrations::versions()
            .filter(|v| !applied.contains(v))
            .collect())
    }

    fn wakeups(&self) -> Wakeups {
        self.wakeups.clone()
    }

    fn broadcasts(&self) -> Broadcasts {
        self.broadcasts.clone()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(exec::map_err)
    }
}
