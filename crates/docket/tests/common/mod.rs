//! Helpers for tests that run the real `docket` binary against PostgreSQL.

#![allow(dead_code)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::PgPool;

/// The server the tests use; fail loudly when it is not there.
pub fn base_url() -> String {
    std::env::var("DOCKET_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh schema; connections through `url` see only it.
pub struct Db {
    pub url: String,
    pub pool: PgPool,
    pub schema: String,
    pub app: String,
    /// The blob folder the test's processes share.
    pub blob_dir: std::path::PathBuf,
}

impl Db {
    pub async fn new() -> Db {
        let base = base_url();
        let admin = PgPool::connect(&base).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {base}: {e}. Start it (pg_ctlcluster <version> main start) \
                 or set DOCKET_TEST_DATABASE_URL; the PostgreSQL tests never skip."
            )
        });
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let schema = format!("docket_mp_{}", &tag[..12]);
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let app = format!("docket_{}", &tag[..12]);
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={app}");
        let pool = PgPool::connect(&url).await.unwrap();
        let blob_dir = std::env::temp_dir().join(format!("docket-test-blobs-{}", &tag[..12]));
        Db {
            url,
            pool,
            schema,
            app,
            blob_dir,
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn drop(self) {
        self.pool.close().await;
        let _ = std::fs::remove_dir_all(&self.blob_dir);
        if let Ok(admin) = PgPool::connect(&base_url()).await {
            let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .execute(&admin)
                .await;
        }
    }
}

/// The binary under test. Every serve and worker process listens (workers for `/metrics` and
/// the health checks): each test's on a port of its own.
pub fn docket() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docket"));
    cmd.env("DOCKET_HTTP__LISTEN", "127.0.0.1:0");
    cmd
}

/// The binary under test in `dir`, with no `DOCKET_*` variables from the test's environment
/// (so that only the test's own configuration applies).
pub fn docket_in(dir: &std::path::Path) -> Command {
    let mut cmd = docket();
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("DOCKET_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DOCKET_HTTP__LISTEN", "127.0.0.1:0");
    cmd
}

/// Fast timings for tests: a dead worker is noticed in about two seconds.
pub const FAST: &[(&str, &str)] = &[
    ("DOCKET_WORKER__HEARTBEAT_INTERVAL_MS", "300"),
    ("DOCKET_WORKER__POLL_INTERVAL_MS", "200"),
    ("DOCKET_MAINTENANCE__LEASE_MS", "1500"),
    ("DOCKET_MAINTENANCE__RESCUE_INTERVAL_MS", "300"),
    ("DOCKET_MAINTENANCE__LEADER_TTL_MS", "1500"),
    ("DOCKET_PIPELINE__BACKOFF_MS", "[200]"),
    ("DOCKET_LOG__LEVEL", "warn"),
];

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY-free: libc::kill on our own child's pid.
        let r = unsafe_free_kill(self.pid(), sig);
        assert_eq!(r, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits for exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "process {} did not exit",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unsafe_free_kill(pid: i32, sig: i32) -> i32 {
    // `kill` is the one libc call these tests need; std has no way to send SIGTERM.
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map(|s| if s.success() { 0 } else { 1 })
        .unwrap_or(1)
}

/// Starts `docket worker` with id `id` on `db`.
pub fn worker(db: &Db, id: &str, extra: &[(&str, &str)]) -> Proc {
    let mut c = docket();
    c.arg("worker")
        .env("DOCKET_DATABASE_URL", &db.url)
        .env("DOCKET_WORKER__ID", id)
        .env("DOCKET_STORAGE__BLOB_DIR", &db.blob_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in FAST.iter().chain(extra) {
        c.env(k, v);
    }
    Proc(c.spawn().expect("spawn docket worker"))
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `within`.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
