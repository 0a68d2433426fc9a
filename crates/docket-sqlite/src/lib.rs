//! The SQLite driver: one file, one node, no server.
//!
//! For development, tests and small single-host deployments. The queue has the same meaning
//! as on PostgreSQL (the same tables, states, guards and views); only the SQL differs:
//!
//! * SQLite has one writer at a time, so this driver keeps **one** connection and serialises
//!   every call in the process through it. Claims need no `SKIP LOCKED`: a claim's pick and
//!   update run in one statement that nobody else can interleave with. Transactions begin
//!   `IMMEDIATE`, taking the write lock up front, so that another process sharing the file
//!   waits (`busy_timeout`) instead of failing on a lock upgrade.
//! * Times are `INTEGER` microseconds since the Unix epoch (UTC), JSON is `TEXT`, UUIDs are
//!   hyphenated `TEXT`. A `now` of `None` is the process clock.
//! * Batches (inserts, completions, id lists) travel as one JSON array parameter that
//!   `json_each` expands, SQLite's `unnest`: one statement per batch, not one per row.
//! * Operations of several statements run inside a savepoint (or an `IMMEDIATE` transaction
//!   when the executor is not in one), so they apply whole or not at all, even if the caller's
//!   future is dropped half-way.
//! * Wake-ups stay in the process: inserts wake this driver's [`Wakeups`] (after the commit,
//!   in a transaction). Another process sharing the file finds the jobs by polling.
//!
//! The database is opened in WAL mode with `synchronous = NORMAL`: a crash of the process
//! loses nothing committed; a power loss may lose the last transactions, never corrupt the
//! file. The write-ahead log is cut back to [`SqliteOptions::wal_size_limit`] when it starts
//! over, so one long read elsewhere does not leave it at its largest size for good.
//!
//! Every SQL statement lives in `queries/`, one file per driver method (or per statement,
//! for the methods that need several).

#[macro_use]
mod exec;
pub mod diagnostics;
mod documents;
mod insert;
mod migrations;
mod monitor;
mod rows;
mod sessions;

use std::str::FromStr;
use std::time::Duration;

use docket_core::{Broadcasts, Error, QueueDriver, Result, Wakeups};

/// Unread broadcasts a slow subscriber may fall behind by.
const BROADCAST_CAPACITY: usize = 4096;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use exec::SqliteExec;

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// A file path (`/var/lib/docket/queue.db`) or a `sqlite:` URL (`sqlite://queue.db`,
    /// `sqlite::memory:`). The file is created when missing.
    pub url: String,
    /// How long a call waits for the connection before it reports the database unavailable.
    /// There is one connection: an open transaction ([`QueueDriver::begin`]) or a held
    /// [`QueueDriver::conn`] makes every other call in the process wait until it is dropped.
    pub acquire_timeout: Duration,
    /// How long SQLite waits for a lock held by another process before it gives up.
    pub busy_timeout: Duration,
    /// The size the write-ahead log is cut back to when it starts over (SQLite's
    /// `journal_size_limit`). A read transaction held open elsewhere (a backup, a `sqlite3`
    /// shell) stops checkpoints from catching up, and the log grows for as long as it lasts;
    /// without a limit the file then keeps its largest size for good.
    pub wal_size_limit: u64,
}

impl SqliteOptions {
    /// Defaults for `url`: 5 s acquire timeout, 5 s busy timeout, the write-ahead log cut
    /// back to 64 MiB.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            wal_size_limit: 64 * 1024 * 1024,
        }
    }

    fn connect_options(&self) -> Result<SqliteConnectOptions> {
        let base = if self.url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(&self.url)
                .map_err(|e| Error::Invalid(format!("bad database url {:?}: {e}", self.url)))?
        } else {
            SqliteConnectOptions::new().filename(&self.url)
        };
        Ok(base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(self.busy_timeout)
            .pragma("journal_size_limit", self.wal_size_limit.to_string()))
    }
}

/// The SQLite driver. Cheap to clone: clones share the connection and the wake-up signal.
#[derive(Clone, Debug)]
pub struct SqliteDriver {
    pool: SqlitePool,
    wakeups: Wakeups,
    broadcasts: Broadcasts,
}

impl SqliteDriver {
    /// Opens (creating it if missing) the database. Unlike PostgreSQL's, this connects
    /// eagerly: a path that cannot be opened is a configuration error, best reported at start.
    pub async fn connect(opts: &SqliteOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            // One writer at a time is all SQLite allows; one connection serialises calls in
            // the process instead of letting them fail with SQLITE_BUSY.
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            // The connection lives as long as the driver: its prepared statements stay cached
            // and an in-memory database is not lost.
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(opts.connect_options()?)
            .await
            .map_err(exec::map_err)?;
        tracing::debug!(url = %opts.url, "sqlite database open");
        Ok(Self {
            pool,
            wakeups: Wakeups::default(),
            broadcasts: Broadcasts::local(BROADCAST_CAPACITY),
        })
    }

    /// The pool (of one connection), for callers that run their own SQL next to the queue's.
    /// Holding a connection from it blocks every queue call in the process.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the connection, after the calls in flight.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl QueueDriver for SqliteDriver {
    type Conn = SqliteExec<sqlx::pool::PoolConnection<sqlx::Sqlite>>;
    type Tx = SqliteExec<sqlx::Transaction<'static, sqlx::Sqlite>>;

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn conn(&self) -> Result<Self::Conn> {
        let conn = self.pool.acquire().await.map_err(exec::map_err)?;
        Ok(SqliteExec::new(conn, self.wakeups.clone(), false))
    }

    async fn control_conn(&self) -> Result<Self::Conn> {
        // One connection is all there is.
        self.conn().await
    }

    async fn begin(&self) -> Result<Self::Tx> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(exec::map_err)?;
        Ok(SqliteExec::new(tx, self.wakeups.clone(), true))
    }

    async fn migrate(&self) -> Result<()> {
        // SQLite changes a table's constraints by rebuilding it, and dropping a parent table
        // with foreign keys on would cascade into its children: migrations run with them off
        // (the pragma is a no-op inside a transaction, so it is set on the connection first)
        // and are checked before they are turned back on.
        let mut conn = self.pool.acquire().await.map_err(exec::map_err)?;
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .map_err(exec::map_err)?;
        let migrated = migrations::migrator()
            .await
            .run_direct(&mut *conn)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) if exec::is_unavailable(&e) => {
                    exec::map_err(e)
                }
                other => Error::Migration(Box::new(other)),
            });
        let violations: std::result::Result<Vec<(String,)>, _> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut *conn)
                .await;
        let restored = sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await
            .map_err(exec::map_err);
        migrated?;
        restored?;
        let violations = violations.map_err(exec::map_err)?;
        if !violations.is_empty() {
            return Err(Error::Database(
                format!("foreign keys broken after migrating: {violations:?}").into(),
            ));
        }
        Ok(())
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        // No table yet: nothing applied.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .or_else(|e| match &e {
                    sqlx::Error::Database(d) if d.message().contains("no such table") => {
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
