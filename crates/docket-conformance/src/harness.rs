//! Fresh, isolated, migrated databases: one per test.
//!
//! * PostgreSQL: a new schema per test (`docket_t_<unix seconds>_<random>`) in the database
//!   named by `DOCKET_TEST_DATABASE_URL` (default [`DEFAULT_PG_URL`]); the driver connects with
//!   `search_path` set to it. The schema is dropped when the [`TestPg`] is dropped, and schemas
//!   left behind by crashed runs are dropped after an hour. An unreachable server is a loud
//!   panic, never a skipped backend.
//! * SQLite: a new file in a temporary directory that lives as long as the [`TestSqlite`].
//!
//! Both implement [`TestDb`], which the behaviours of this crate are written against.

use std::future::Future;
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use docket_core::{Driver, QueueDriver};
use docket_postgres::{PgDriver, PgOptions};
use docket_sqlite::{SqliteDriver, SqliteOptions};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The environment variable naming the PostgreSQL server (and database) tests use.
pub const PG_URL_ENV: &str = "DOCKET_TEST_DATABASE_URL";

/// The PostgreSQL URL used when [`PG_URL_ENV`] is not set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Test schemas older than this are assumed to be left over from a crashed run.
const STALE_SCHEMA_AGE: Duration = Duration::from_secs(3600);

/// A migrated database of one backend, private to one test.
pub trait TestDb: Send + Sync + 'static {
    /// The driver under test.
    type D: Driver;

    /// The driver, connected to this test's database and migrated.
    fn driver(&self) -> &Self::D;

    /// The backend's name, as [`QueueDriver::name`] must report it.
    fn backend(&self) -> &'static str;

    /// A second, independent driver (its own pool and connections) on the same database:
    /// "another process".
    fn connect_again(&self) -> impl Future<Output = Self::D> + Send;

    /// Runs `sql` on the driver's pool, outside the queue API, and returns how many rows it
    /// produced. Panics when the statement fails.
    fn query_rows(&self, sql: &str) -> impl Future<Output = usize> + Send;
}

/// The PostgreSQL server URL: [`PG_URL_ENV`], or [`DEFAULT_PG_URL`].
pub fn pg_base_url() -> String {
    std::env::var(PG_URL_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// `url` with `-c search_path=<schema>` added to its `options` parameter (percent-encoded), so
/// that any client (a child process included) connecting with it sees `schema` only.
pub fn pg_url_with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// `url` pointing at database `database` instead of the one it names.
pub fn pg_url_with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port/db: the database is the path after the authority.
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Connects to the PostgreSQL server for administration (creating schemas and databases),
/// panicking with instructions when it cannot be reached.
pub async fn pg_admin_connect(url: &str) -> PgConnection {
    let attempt = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url)).await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => pg_unreachable(url, &e.to_string()),
        Err(_) => pg_unreachable(url, "connection attempt timed out after 10 s"),
    }
}

fn pg_unreachable(url: &str, why: &str) -> ! {
    panic!(
        "\n\n==================== POSTGRESQL UNREACHABLE ====================\n\
         The PostgreSQL conformance tests cannot reach {url}\n  ({why}).\n\
         These tests are NOT skipped: an untested backend is a failed test.\n\
         Start a server, e.g.\n  \
         docker run --rm -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16\n\
         or point {PG_URL_ENV} at one (postgres://user:password@host:port/database).\n\
         ================================================================\n"
    )
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_suffix() -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(12);
    s
}

/// Drops test schemas whose creation time (in their name) is over an hour old; once per
/// process, best effort.
async fn drop_stale_schemas(conn: &mut PgConnection) {
    static ONCE: Once = Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if !first {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'docket\\_t\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    let cutoff = unix_secs().saturating_sub(STALE_SCHEMA_AGE.as_secs());
    for name in names {
        let created = name
            .strip_prefix("docket_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| c < cutoff) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A PostgreSQL schema private to one test, with a migrated driver connected to it.
///
/// The driver does not `LISTEN` (every test shares the server's notification channel, so
/// another test's inserts would wake it): its wake-ups are this process's own. Cross-process
/// wake-ups are tested on a private database ([`TempPgDatabase`]).
#[derive(Debug)]
pub struct TestPg {
    driver: PgDriver,
    admin_url: String,
    url: String,
    schema: String,
}

/// Creates a fresh schema, connects a [`PgDriver`] to it and migrates it.
///
/// Panics (loudly, saying how to start one) when the server is unreachable.
pub async fn postgres() -> TestPg {
    let admin_url = pg_base_url();
    let mut admin = pg_admin_connect(&admin_url).await;
    drop_stale_schemas(&mut admin).await;
    let schema = format!("docket_t_{}_{}", unix_secs(), random_suffix());
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test schema {schema} on {admin_url}: {e}"));
    let _ = admin.close().await;

    let url = pg_url_with_search_path(&admin_url, &schema);
    let driver = connect_pg(&url, false);
    driver
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrating test schema {schema}: {e}"));
    TestPg {
        driver,
        admin_url,
        url,
        schema,
    }
}

/// A [`PgDriver`] for `url` with test settings.
pub fn connect_pg(url: &str, listen: bool) -> PgDriver {
    let mut opts = PgOptions::new(url);
    opts.listen = listen;
    opts.acquire_timeout = Duration::from_secs(30);
    PgDriver::connect(&opts).unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

impl TestPg {
    /// The URL of this test's schema: the server URL with `search_path` set, usable by child
    /// processes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The driver.
    pub fn pg(&self) -> &PgDriver {
        &self.driver
    }
}

impl TestDb for TestPg {
    type D = PgDriver;

    fn driver(&self) -> &PgDriver {
        &self.driver
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn connect_again(&self) -> PgDriver {
        connect_pg(&self.url, false)
    }

    async fn query_rows(&self, sql: &str) -> usize {
        sqlx::query(sql)
            .fetch_all(self.driver.pool())
            .await
            .unwrap_or_else(|e| panic!("postgres: {sql}: {e}"))
            .len()
    }
}

/// Runs `f` to completion on a runtime of its own, in a thread of its own: for clean-up in
/// `Drop`, which may run inside (and must not block) a test's runtime.
fn run_detached<F>(f: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    });
    let _ = handle.join();
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let schema = self.schema.clone();
        run_detached(async move {
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url))
                    .await
            else {
                return;
            };
            let _ = sqlx::query("SET lock_timeout = '10s'")
                .execute(&mut conn)
                .await;
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        });
    }
}

/// A PostgreSQL database private to one test (for what a schema cannot isolate, such as
/// `NOTIFY` channels), dropped on drop.
#[derive(Debug)]
pub struct TempPgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TempPgDatabase {
    /// Creates an empty database on the test server.
    pub async fn create() -> Self {
        let admin_url = pg_base_url();
        let mut admin = pg_admin_connect(&admin_url).await;
        let name = format!("docket_t_{}_{}", unix_secs(), random_suffix());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating test database {name} on {admin_url}: {e}"));
        let _ = admin.close().await;
        let url = pg_url_with_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TempPgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        run_detached(async move {
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url))
                    .await
            else {
                return;
            };
            // FORCE (PostgreSQL 13+) ends the drivers' sessions still connected to it.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        });
    }
}

/// A SQLite database file private to one test, with a migrated driver.
#[derive(Debug)]
pub struct TestSqlite {
    driver: SqliteDriver,
    path: String,
    // Last: the directory goes after the driver.
    _dir: tempfile::TempDir,
}

/// Creates a fresh database file in a new temporary directory and migrates it.
pub async fn sqlite() -> TestSqlite {
    let dir = tempfile::Builder::new()
        .prefix("docket-conformance-")
        .tempdir()
        .expect("creating a temporary directory");
    let path = dir
        .path()
        .join("queue.db")
        .to_str()
        .expect("temporary path is UTF-8")
        .to_owned();
    let driver = connect_sqlite(&path).await;
    driver
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrating {path}: {e}"));
    TestSqlite {
        driver,
        path,
        _dir: dir,
    }
}

async fn connect_sqlite(path: &str) -> SqliteDriver {
    SqliteDriver::connect(&SqliteOptions::new(path))
        .await
        .unwrap_or_else(|e| panic!("opening {path}: {e}"))
}

impl TestSqlite {
    /// The database file.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl TestDb for TestSqlite {
    type D = SqliteDriver;

    fn driver(&self) -> &SqliteDriver {
        &self.driver
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn connect_again(&self) -> SqliteDriver {
        connect_sqlite(&self.path).await
    }

    async fn query_rows(&self, sql: &str) -> usize {
        sqlx::query(sql)
            .fetch_all(self.driver.pool())
            .await
            .unwrap_or_else(|e| panic!("sqlite: {sql}: {e}"))
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            pg_url_with_search_path("postgres://u@h:5432/db", "s1"),
            "postgres://u@h:5432/db?options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            pg_url_with_search_path("postgres://u@h/db?sslmode=disable", "s1"),
            "postgres://u@h/db?sslmode=disable&options=-c%20search_path%3Ds1"
        );
        assert_eq!(
            pg_url_with_database("postgres://u@h:5432/postgres", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            pg_url_with_database("postgres://u@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
        assert_eq!(
            pg_url_with_database("postgres://u@h", "t1"),
            "postgres://u@h/t1"
        );
    }
}
