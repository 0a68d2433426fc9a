//! The dashboard tests' server: the real router with workers (the pipeline's and a job that
//! fails for good once), a cron schedule, an admin key and a read-only one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use docket_core::{
    CronScheduleSpec, CronScheduleUpsertParams, Driver, MissedRunPolicy, QueueExecutor,
};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use docket_queue::{JobArgs, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Server;

pub const MAX_BODY: usize = 1024 * 1024;
pub const ADMIN_KEY: &str = "dashboard-test-admin-key";

/// A job that fails for good on its first run and succeeds on every later one: the
/// dead-letter flow.
#[derive(Debug, Serialize, Deserialize)]
pub struct FlakyArgs {
    pub note: String,
}

impl JobArgs for FlakyArgs {
    const KIND: &'static str = "test.flaky";
}

struct Flaky(Arc<AtomicUsize>);

impl<D: Driver> Worker<D> for Flaky {
    type Args = FlakyArgs;

    async fn work(&self, _ctx: JobContext<D>, _args: FlakyArgs) -> Result<(), JobError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(JobError::permanent(
                "the test asked this job to fail for good <once>",
            ))
        } else {
            Ok(())
        }
    }
}

/// A server like `docket serve`: the real router with workers (the pipeline's and
/// `test.flaky`), a cron schedule (nothing runs it: no maintenance), and `keys`.
pub async fn serve<D: Driver>(driver: &D, keys: Option<ApiKeys>) -> Server<D> {
    let s = super::serve_with(driver, MAX_BODY, keys, |_, workers, _| {
        workers.register(Flaky(Arc::new(AtomicUsize::new(0))));
    })
    .await;
    let mut c = s.driver.conn().await.unwrap();
    c.cron_schedule_upsert(CronScheduleUpsertParams {
        spec: CronScheduleSpec {
            name: "nightly-cleanup".into(),
            expression: "0 3 * * *".into(),
            timezone: "UTC".into(),
            job_type: "test.flaky".into(),
            queue: "default".into(),
            payload: serde_json::json!({ "note": "cron" }),
            priority: 0,
            enabled: true,
            missed_policy: MissedRunPolicy::RunOnce,
        },
        next_run_at: chrono::Utc::now() + chrono::Duration::hours(6),
    })
    .await
    .unwrap();
    drop(c);
    s
}

pub const READ_KEY: &str = "dashboard-test-read-key";

/// An admin key and a read-only one.
pub fn keys() -> ApiKeys {
    ApiKeys::new(&[
        ApiKey {
            name: "operator".into(),
            sha256: format!("{:x}", Sha256::digest(ADMIN_KEY.as_bytes())),
            scopes: vec![Scope::Admin],
        },
        ApiKey {
            name: "reader".into(),
            sha256: format!("{:x}", Sha256::digest(READ_KEY.as_bytes())),
            scopes: vec![Scope::Read],
        },
    ])
    .unwrap()
}

/// A client that does not follow redirects (to see the dashboard's `303`s).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An answer's `Location`, or "".
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
