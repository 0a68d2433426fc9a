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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use docket_conformance::harness::{TestDb, sqlite};
use docket_core::{
    CronScheduleSpec, CronScheduleUpsertParams, DocumentStore, Driver, JobGetAvailableParams,
    JobInsertManyParams, JobInsertParams, MissedRunPolicy, MonitorStore, QueueDriver,
    QueueExecutor, WorkerHeartbeatParams,
};
use docket_http::auth::{ApiKey, ApiKeys, Scope};
use docket_queue::{InsertOpts, JobArgs, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAX_BODY: usize = 1024 * 1024;
const ADMIN_KEY: &str = "dashboard-test-admin-key";

/// A job that fails for good on its first run and succeeds on every later one: the
/// dead-letter flow.
#[derive(Debug, Serialize, Deserialize)]
struct FlakyArgs {
    note: String,
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

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

mod common;
use common::Server;

/// A server like `docket serve`: the real router with workers (the pipeline's and
/// `test.flaky`), a cron schedule (nothing runs it: no maintenance), and `keys`.
async fn serve<D: Driver>(driver: &D, keys: Option<ApiKeys>) -> Server<D> {
    let s = common::serve_with(driver, MAX_BODY, keys, |_, workers, _| {
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

const READ_KEY: &str = "dashboard-test-read-key";

/// An admin key and a read-only one.
fn keys() -> ApiKeys {
    ApiKeys::new(&[
        ApiKey {
            name: "operator".into(),
            sha256: hex(&Sha256::digest(ADMIN_KEY.as_bytes())),
            scopes: vec![Scope::Admin],
        },
        ApiKey {
            name: "reader".into(),
            sha256: hex(&Sha256::digest(READ_KEY.as_bytes())),
            scopes: vec![Scope::Read],
        },
    ])
    .unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Who may see and do what, without a browser: the login form, sessions, scopes, cross-site
/// posts, escaping, logout, and the bearer-key API beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules() {
    let db = sqlite().await;
    let s = serve(db.driver(), Some(keys())).await;
    let http = no_redirects();
    let url = |p: &str| format!("{}{p}", s.base);

    // Pages send strangers to the login form; actions answer 401.
    let r = http.get(url("/")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/login".into())
    );
    let r = http.get(url("/ui/jobs/failed")).send().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/login".into())
    );
    let r = http
        .post(url("/ui/queues/default/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A bearer key opens the JSON API, not the dashboard.
    let r = http
        .get(url("/ui/queues"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(url("/v1/queues"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The login form and the assets are open.
    let r = http.get(url("/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("name=\"key\""));
    let r = http.get(url("/ui/assets/app.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );

    // A wrong key, a key without admin: no session.
    for (key, want) in [
        ("nope", "/ui/login?error=invalid"),
        (READ_KEY, "/ui/login?error=scope"),
    ] {
        let r = http
            .post(url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={}", key))
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("set-cookie").is_none());
        assert_eq!((r.status().as_u16(), location(&r)), (303, want.into()));
    }
    // A login posted from another site: refused.
    let r = http
        .post(url("/ui/login"))
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The admin key: a session cookie, HttpOnly, Secure, SameSite=Strict.
    let r = http
        .post(url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/".into()));
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let token = cookie.strip_prefix("docket_session=").unwrap();
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    let page = http
        .get(url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<h1>Overview</h1>") && html.contains("operator"),
        "{html}"
    );

    // User data is escaped: a document named like markup.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"# Title\n\nSome words to index.".to_vec())
            .file_name("<img src=x onerror=alert(1)>.md"),
    );
    let r = http
        .post(url("/ui/documents"))
        .header("cookie", &cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/documents".into())
    );
    let html = http
        .get(url("/ui/documents"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;.md"),
        "{html}"
    );
    assert!(!html.contains("<img src=x"), "{html}");

    // Cross-site posts are refused even with the cookie; same-origin ones work.
    let r = http
        .post(url("/ui/queues/default/pause"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // `Origin: null` alone (a sandboxed frame, say) is refused; with the browser's own
    // `Sec-Fetch-Site: same-origin` it is the pages' own form post under their
    // `Referrer-Policy: no-referrer`.
    let null_origin = |site: Option<&'static str>| {
        let mut r = http
            .post(url("/ui/queues/default/pause"))
            .header("cookie", &cookie)
            .header("origin", "null");
        if let Some(site) = site {
            r = r.header("sec-fetch-site", site);
        }
        r.send()
    };
    assert_eq!(null_origin(None).await.unwrap().status(), 403);
    assert_eq!(null_origin(Some("cross-site")).await.unwrap().status(), 403);
    assert_eq!(
        null_origin(Some("same-origin")).await.unwrap().status(),
        200,
        "asks to confirm"
    );
    // Pausing asks first: without `confirm=yes` the answer is a page that asks, and the
    // queue runs on.
    let pause = |body: &'static str| {
        http.post(url("/ui/queues/default/pause"))
            .header("cookie", &cookie)
            .header("origin", &s.base)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = pause("").await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Pause queue default?"), "{html}");
    assert!(
        html.contains("name=\"confirm\" value=\"yes\""),
        "the confirmation page posts the form again, confirmed: {html}"
    );
    let mut c = s.driver.conn().await.unwrap();
    assert!(
        !c.queue_list()
            .await
            .unwrap()
            .iter()
            .any(|q| q.paused_at.is_some()),
        "nothing paused before the confirmation"
    );
    drop(c);
    let r = pause("back=%2Fui%2Fqueues&confirm=yes").await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/queues".into())
    );
    let mut c = s.driver.conn().await.unwrap();
    let q = c.queue_list().await.unwrap();
    assert!(
        q.iter()
            .any(|q| q.name == "default" && q.paused_at.is_some()),
        "{q:?}"
    );
    drop(c);

    // "Run now" follows the API's rule: a second run while the first waits in the paused
    // queue is refused.
    let run_now = || {
        http.post(url("/ui/cron/nightly-cleanup/run"))
            .header("cookie", &cookie)
            .send()
    };
    let r = run_now().await.unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/queues".into())
    );
    let r = run_now().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("already live"));

    // While the queue is paused a job waits: cancel it, then retry it (it is queued again).
    let job = docket_queue::Client::new(s.driver.clone())
        .insert(
            &FlakyArgs {
                note: "waits".into(),
            },
            InsertOpts::default(),
        )
        .await
        .unwrap()
        .id;
    let state = |id: i64| {
        let driver = s.driver.clone();
        async move {
            let mut c = driver.conn().await.unwrap();
            c.job_get(id).await.unwrap().unwrap().status
        }
    };
    let page = http
        .get(url(&format!("/ui/jobs/{job}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("action=\"/ui/jobs/{job}/cancel\"")),
        "{page}"
    );
    for (action, want) in [
        ("cancel", docket_core::JobState::Cancelled),
        ("retry", docket_core::JobState::Queued),
    ] {
        let r = http
            .post(url(&format!("/ui/jobs/{job}/{action}")))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (r.status().as_u16(), location(&r)),
            (303, format!("/ui/jobs/{job}"))
        );
        assert_eq!(state(job).await, want, "after {action}");
    }
    // "Retry every failed job" leaves a cancelled job alone.
    let r = http
        .post(url(&format!("/ui/jobs/{job}/cancel")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let r = http
        .post(url("/ui/jobs/retry"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("all=1&confirm=yes")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/jobs/failed".into())
    );
    assert_eq!(
        flash_of(&r).as_deref(),
        Some("done.No+failed+jobs%3A+nothing+retried.")
    );
    assert_eq!(state(job).await, docket_core::JobState::Cancelled);

    // Logging out ends the session on the server, not only in the browser.
    let r = http
        .post(url("/ui/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/login".into())
    );
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = http
        .get(url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/login".into())
    );
    s.runtime.shutdown().await;
}

/// Without keys (a loopback-only server) the dashboard is open and has no login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_without_keys() {
    let db = sqlite().await;
    let s = serve(db.driver(), None).await;
    let http = no_redirects();
    let r = http.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("Log out"), "{html}");
    for page in [
        "/ui/jobs",
        "/ui/jobs/failed",
        "/ui/jobs/stuck",
        "/ui/documents",
        "/ui/queues",
    ] {
        let r = http.get(format!("{}{page}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
    }
    let r = http
        .get(format!("{}/ui/login", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/".into()));
    // Still no cross-site posts.
    let r = http
        .post(format!("{}/ui/queues/default/pause", s.base))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{}/ui/jobs/424242", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.runtime.shutdown().await;
}

/// A long document's page shows its chunks a page at a time, says how many there are and
/// where this page is, links to the others, and answers a page that does not exist clearly.
/// The upload's answer says what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_page_shows_its_chunks_a_page_at_a_time() {
    let db = sqlite().await;
    let s = serve(db.driver(), None).await;
    let http = no_redirects();
    let url = |p: &str| format!("{}{p}", s.base);
    let text = "# Tide tables\n\n".to_owned()
        + &(0..90)
            .map(|i| format!("Entry {i}: high water at the harbour mouth, low water over the bar, and the ferry waits for both."))
            .collect::<Vec<_>>()
            .join("\n\n");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text.into_bytes()).file_name("tides <2024>.md"),
    );
    let r = http
        .post(url("/ui/documents"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/ui/documents".into())
    );
    let flash = flash_of(&r).expect("the upload says what it did");
    let html = http
        .get(url("/ui/documents"))
        .header("cookie", format!("docket_flash={flash}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("tides &lt;2024&gt;.md uploaded: queued for processing."),
        "{html}"
    );

    // Wait for it to complete (a connection per look: the pipeline needs them).
    let id = {
        let mut c = s.driver.conn().await.unwrap();
        c.document_list(&docket_core::DocumentListParams {
            status: None,
            source: None,
            before: None,
            limit: 10,
        })
        .await
        .unwrap()[0]
            .id
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let doc = loop {
        let d = {
            let mut c = s.driver.conn().await.unwrap();
            c.document_get(id).await.unwrap().unwrap()
        };
        if d.status == docket_core::DocumentStatus::Completed {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let total = doc.chunk_count as usize;
    assert!(total > 40, "enough chunks for three pages: {total}");
    let pages = total.div_ceil(20);
    let get = |q: String| {
        let u = url(&format!("/ui/documents/{id}{q}"));
        let http = http.clone();
        async move {
            let r = http.get(u).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let chunks_on = |html: &str| html.matches("<li><div class=\"meta\">").count();

    let (status, html) = get(String::new()).await;
    assert_eq!(status, 200);
    assert_eq!(chunks_on(&html), 20, "the first page holds 20 chunks");
    assert!(
        html.contains(&format!("Chunks 1–20 of {total} · page 1 of {pages}")),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "href=\"/ui/documents/{id}?page=2#chunks\" rel=\"next\""
        )),
        "{html}"
    );
    assert!(!html.contains("rel=\"prev\""), "{html}");
    assert!(html.contains("<div class=\"meta\">#0 ·"), "{html}");
    let (status, html) = get("?page=2".into()).await;
    assert_eq!(status, 200);
    assert_eq!(chunks_on(&html), 20);
    assert!(
        html.contains(&format!("Chunks 21–40 of {total} · page 2 of {pages}")),
        "{html}"
    );
    assert!(
        html.contains("<div class=\"meta\">#20 ·") && !html.contains("<div class=\"meta\">#0 ·"),
        "{html}"
    );
    assert!(
        html.contains("rel=\"prev\"") && html.contains("rel=\"next\""),
        "{html}"
    );
    let (status, html) = get(format!("?page={pages}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        chunks_on(&html),
        total - 20 * (pages - 1),
        "the last page holds the rest"
    );
    assert!(!html.contains("rel=\"next\""), "{html}");

    // Pages that do not exist: said clearly, with the pages that do.
    for bad in ["0", "-2", "two", "1e3"] {
        let (status, html) = get(format!("?page={bad}")).await;
        assert_eq!(status, 422, "{bad}");
        assert!(
            html.contains(&format!("page must be a whole number from 1 to {pages}")),
            "{html}"
        );
    }
    let (status, html) = get(format!("?page={}", pages + 1)).await;
    assert_eq!(status, 404);
    assert!(
        html.contains(&format!(
            "page {} is past the last page: this document&#39;s {total} chunks fill {pages} pages of 20",
            pages + 1
        )),
        "{html}"
    );
    s.runtime.shutdown().await;
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

/// The `docket_flash` cookie an action's answer sets, if any.
fn flash_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("docket_flash="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
