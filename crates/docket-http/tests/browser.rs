//! The operator dashboard in a real headless browser: a server like `docket serve` (SQLite, an
//! admin key, workers) driven by `tests/browser/dashboard.mjs` (Playwright's `playwright-core`
//! over the system's Chromium). Log in; find a job that failed for good in the dead-letter
//! view, its error readable at phone width, retry it (after a confirmation) and see it
//! complete; pause a queue (after a confirmation) and see the documents list say so; upload a
//! document and watch its progress bar reach 100 % without a reload once the queue is resumed;
//! page through its chunks; see maintenance jobs hidden from the jobs list until asked for;
//! see a dead worker on the overview and its job on the Stuck page, and cancel it there; see
//! every action's message; log out. It screenshots every page at 1280×800 and 390×844: into a
//! temporary folder, or into `docs/screenshots/` with `DOCKET_UPDATE_SCREENSHOTS=1`.
//!
//! Needs `node` and `/usr/bin/chromium` (or `DOCKET_CHROMIUM`), and `npm ci` run once in
//! `crates/docket-http/tests/browser/`.

use std::path::PathBuf;
use std::time::Duration;

use docket_conformance::harness::{TestDb, sqlite};
use docket_core::{
    JobGetAvailableParams, JobInsertManyParams, JobInsertParams, MonitorStore, QueueDriver,
    QueueExecutor, WorkerHeartbeatParams,
};
use docket_queue::InsertOpts;

mod common;
use common::dashboard::{ADMIN_KEY, FlakyArgs, keys, serve};

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "the browser test needs its npm packages: run `npm ci` in {}",
        dir.display()
    );
    let chromium = std::env::var("DOCKET_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the browser test needs Chromium at {chromium} (apt-get install chromium, or set DOCKET_CHROMIUM)"
    );
    let db = sqlite().await;
    let s = serve(db.driver(), Some(keys())).await;
    let base = s.base.clone();

    // A job that fails for good at once: the browser finds it in the dead-letter view.
    docket_queue::Client::new(s.driver.clone())
        .insert(
            &FlakyArgs {
                note: "fails once, then works".into(),
            },
            InsertOpts::default(),
        )
        .await
        .unwrap();

    // What the leader's every-minute sweep and nightly cleanup leave in the jobs list: the
    // list hides them unless asked.
    {
        let mut c = s.driver.conn().await.unwrap();
        let jobs = std::iter::repeat_n("docket.sweep_documents", 12)
            .chain(["docket.cleanup"])
            .map(|k| JobInsertParams::new(k, serde_json::json!({})))
            .collect();
        c.job_insert_many(JobInsertManyParams { jobs })
            .await
            .unwrap();
    }

    // A worker that died two minutes ago (its own lease is 30 s) holding a running job, in a
    // queue this server does not work: the overview shows it dead, the Stuck page its job.
    {
        let mut c = s.driver.conn().await.unwrap();
        let now = chrono::Utc::now();
        c.worker_heartbeat(WorkerHeartbeatParams {
            id: "crashed-worker".into(),
            hostname: "gone-host".into(),
            pid: 4242,
            queues: vec!["crashed".into()],
            lease: chrono::Duration::seconds(30),
            now: Some(now - chrono::Duration::minutes(2)),
        })
        .await
        .unwrap();
        let mut job = JobInsertParams::new(
            "test.flaky",
            serde_json::json!({ "note": "its worker died" }),
        );
        job.queue = "crashed".into();
        job.run_at = Some(now - chrono::Duration::minutes(10));
        c.job_insert_many(JobInsertManyParams { jobs: vec![job] })
            .await
            .unwrap();
        let got = c
            .job_get_available(JobGetAvailableParams {
                worker_id: "crashed-worker".into(),
                queue: "crashed".into(),
                limit: 1,
                now: Some(now - chrono::Duration::minutes(5)),
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }

    // The alert the leader's rules would fire for that queue (this server runs no
    // maintenance): the banner shows it on every page.
    {
        let mut c = s.driver.conn().await.unwrap();
        c.alert_open(&docket_core::AlertOpenParams {
            rule: "queue_without_worker".into(),
            subject: "queue=crashed".into(),
            state: docket_core::AlertState::Firing,
            severity: "page".into(),
            summary: "queue crashed has due jobs (1 waiting, the oldest for 10 min) and no live worker serves it".into(),
            figures: serde_json::json!({"queue": "crashed", "waiting": 1}),
            now: chrono::Utc::now() - chrono::Duration::minutes(4),
        })
        .await
        .unwrap();
    }

    // Two days of what the hourly analytics job rolls up, for the Analytics page.
    {
        use docket_core::{
            AnalyticsStoreParams, AttemptOutcome, AttemptRollupRow, FailureReasonRow,
        };
        let mut c = s.driver.conn().await.unwrap();
        let now = chrono::Utc::now();
        let hour0 = chrono::DurationRound::duration_trunc(now, chrono::Duration::hours(1)).unwrap();
        for h in 1..=36i64 {
            let hour = hour0 - chrono::Duration::hours(h);
            let mut rollup = Vec::new();
            for (i, stage) in ["parse", "chunk", "embed", "complete", "notify"]
                .iter()
                .enumerate()
            {
                let n = 20 + (h % 7) * 3;
                let ms = [180, 12, 640, 8, 25][i] + (h % 5) * 10;
                rollup.push(AttemptRollupRow {
                    hour,
                    job_type: format!("docket.{stage}"),
                    queue: "default".into(),
                    outcome: AttemptOutcome::Completed,
                    attempts: n,
                    total_ms: n * ms,
                    p50_ms: ms,
                    p95_ms: ms * 3,
                    p99_ms: ms * 5,
                    max_ms: ms * 6,
                });
            }
            rollup.push(AttemptRollupRow {
                hour,
                job_type: "docket.embed".into(),
                queue: "default".into(),
                outcome: AttemptOutcome::Retried,
                attempts: h % 4,
                total_ms: (h % 4) * 30_000,
                p50_ms: 30_000,
                p95_ms: 30_000,
                p99_ms: 30_000,
                max_ms: 30_000,
            });
            let reasons = if h % 6 == 0 {
                vec![FailureReasonRow {
                    job_type: "docket.embed".into(),
                    reason: "embedding failed: provider answered <n> after <n> s".into(),
                    example: format!("embedding failed: provider answered 503 after {h} s"),
                    count: 3,
                    first_seen: hour,
                    last_seen: hour + chrono::Duration::minutes(40),
                    example_job_ids: vec![40 + h, 20 + h],
                }]
            } else {
                Vec::new()
            };
            c.analytics_store(&AnalyticsStoreParams {
                rollup,
                reasons,
                rolled_until: hour + chrono::Duration::hours(1),
            })
            .await
            .unwrap();
        }
    }

    let update = std::env::var("DOCKET_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    let shots_tmp = tempfile::tempdir().unwrap();
    let shots = if update {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&d).unwrap();
        d
    } else {
        shots_tmp.path().to_owned()
    };
    let profile = tempfile::tempdir().unwrap();

    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("dashboard.mjs"))
        .arg(&base)
        .arg(ADMIN_KEY)
        .arg(&shots)
        .env("DOCKET_CHROMIUM", &chromium)
        .env("DOCKET_PROFILE_DIR", profile.path())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(&dir)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser script finishes within 3 minutes")
        .expect("node runs (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- dashboard.mjs stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "the browser script failed: {}",
        out.status
    );
    let mut pngs: Vec<String> = std::fs::read_dir(&shots)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    pngs.sort();
    println!("screenshots in {}: {pngs:?}", shots.display());
    assert!(
        pngs.len() >= 16,
        "a screenshot per page and width: {pngs:?}"
    );

    s.runtime.shutdown().await;
}
