//! The operator dashboard over plain HTTP, without a browser: who may see and do what (the
//! login form, sessions, scopes, cross-site posts, escaping, logout), an open server, and a
//! document's chunks a page at a time. The same pages in a real browser are `browser.rs`.

use std::time::Duration;

use docket_conformance::harness::{TestDb, sqlite};
use docket_core::{DocumentStore, QueueDriver, QueueExecutor};
use docket_queue::InsertOpts;

mod common;
use common::dashboard::{ADMIN_KEY, FlakyArgs, READ_KEY, keys, location, no_redirects, serve};

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

/// The `docket_flash` cookie an action's answer sets, if any.
fn flash_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("docket_flash="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}
