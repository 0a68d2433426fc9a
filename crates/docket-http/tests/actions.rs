//! Operator actions over a real socket, on both backends: cancel a document, run now, discard,
//! and the audit trail that records each under the caller's key; the dashboard's actions, which
//! ask before bulk and pausing ones and answer each with what it did.

use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::{JobInsertManyParams, JobInsertParams, QueueDriver, QueueExecutor};
use docket_http::auth::ApiKeys;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;

mod common;

use common::{ADMIN, READER, json};

fn keys() -> ApiKeys {
    common::admin_and_reader()
}

#[both_backends]
async fn operator_actions_are_applied_and_audited(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, Some(keys())).await;
    let http = reqwest::Client::new();
    let post = |p: &str| http.post(format!("{}{p}", s.base)).bearer_auth(ADMIN);
    let get = |p: &str| http.get(format!("{}{p}", s.base)).bearer_auth(ADMIN);

    // Paused, an upload's first stage waits in the queue.
    let (status, _) = json(post("/v1/queues/default/pause").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let form = Form::new().part(
        "file",
        Part::bytes(b"The ferry leaves at dawn.".to_vec()).file_name("ferry.txt"),
    );
    let (status, up) = json(post("/v1/documents").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{up}");
    let doc = up["document"]["id"].as_str().unwrap().to_owned();

    // Cancel the document: its queued parse job goes with it, and it stays cancelled.
    let (status, body) = json(
        post(&format!("/v1/documents/{doc}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["documents"], json!([doc]));
    let parse_job = body["cancelled"][0].as_i64().expect("the parse job");
    let (_, d) = json(get(&format!("/v1/documents/{doc}")).send().await.unwrap()).await;
    assert_eq!(d["status"], "cancelled", "{d}");
    let (status, body) = json(
        post(&format!("/v1/documents/{doc}/cancel"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = json(
        http.post(format!("{}/v1/documents/{doc}/cancel", s.base))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "cancel needs the admin scope"
    );

    // A dead letter: a job of a kind no handler works, run by hand.
    let mut c = s.driver.conn().await.unwrap();
    let mut j = JobInsertParams::new("test.nobody", json!({}));
    j.queue = "manual".into();
    let dead = c
        .job_insert_many(JobInsertManyParams { jobs: vec![j] })
        .await
        .unwrap()[0]
        .id;
    drop(c);
    let (status, body) = json(
        post("/v1/jobs/process")
            .json(&json!({ "queue": "manual", "limit": 1 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["processed"][0]["outcome"], "failed", "{body}");

    // Run now refuses it, saying why; retrying the queued-again document's job is refused too.
    let (status, body) = json(
        post(&format!("/v1/jobs/{dead}/run-now"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("failed"), "{body}");
    let (status, body) = json(
        post(&format!("/v1/jobs/{parse_job}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a cancelled job is no dead letter: {body}"
    );
    let (status, body) = json(
        post(&format!("/v1/jobs/{dead}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["discarded"], json!([dead]));
    let (status, _) = json(
        post(&format!("/v1/jobs/{dead}/discard"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Reprocess, then run the new parse job now (queue still paused: it stays due, unclaimed).
    let (status, _) = json(
        post(&format!("/v1/documents/{doc}/reprocess"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = json(
        post("/v1/jobs/run-now")
            .json(&json!({ "queue": "default" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run_now"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = json(
        post("/v1/jobs/run-now")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The audit trail: every action, newest first, under the key's name.
    let (status, audit) = json(get("/v1/audit").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "run_now",
            "reprocess",
            "discard",
            "discard",
            "discard",
            "run_now",
            "cancel",
            "cancel",
            "pause"
        ],
        "every action is recorded, those that changed nothing too: {audit}"
    );
    assert!(
        audit["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "key:ops")
    );
    let (_, of_dead) = json(get(&format!("/v1/audit?job={dead}")).send().await.unwrap()).await;
    assert_eq!(of_dead["actions"].as_array().unwrap().len(), 1, "{of_dead}");
    assert_eq!(of_dead["actions"][0]["action"], "discard");
    let (status, _) = json(
        http.get(format!("{}/v1/audit", s.base))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the audit trail needs the admin scope"
    );
}

/// The dashboard's `docket_flash` message in an answer: `(level, text)`.
fn flash_of(r: &reqwest::Response) -> Option<(String, String)> {
    let v = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("docket_flash="))?
        .split(';')
        .next()?
        .to_owned();
    let (level, text) = v.split_once('.')?;
    let text = url::form_urlencoded::parse(format!("m={text}").as_bytes())
        .next()?
        .1
        .into_owned();
    Some((level.to_owned(), text))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// How many rows of the jobs list are of `kind`.
fn rows_of(html: &str, kind: &str) -> usize {
    html.matches(&format!("data-label=\"kind\">{kind}<"))
        .count()
}

/// The dashboard's actions, logged in with the admin key: bulk retry and discard and pausing
/// change nothing until confirmed; each answer carries a message (a short-lived cookie) saying
/// what was done, with counts, that the next page shows once and the live refresh leaves
/// alone; a paused queue shows on the documents list, with a button that resumes it; the jobs
/// list hides maintenance jobs unless asked; all of it in the audit trail.
#[both_backends]
async fn dashboard_actions_ask_first_and_say_what_they_did(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, Some(keys())).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/ui/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", s.base))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let page = |path: &str, cookies: String| {
        http.get(format!("{}{path}", s.base))
            .header("cookie", format!("{session}{cookies}"))
            .send()
    };
    let text = |r: reqwest::Response| async move {
        let status = r.status();
        (status, r.text().await.unwrap())
    };
    let state = |id: i64| {
        let driver = s.driver.clone();
        async move {
            let mut c = driver.conn().await.unwrap();
            c.job_get(id).await.unwrap().map(|j| j.status)
        }
    };

    // Three dead letters: jobs of a kind no handler works, in a queue the server does not
    // work, run by hand.
    let mut c = s.driver.conn().await.unwrap();
    let jobs = (0..3)
        .map(|_| {
            let mut j = JobInsertParams::new("test.nobody", json!({}));
            j.queue = "manual".into();
            j
        })
        .collect();
    let mut ids: Vec<i64> = c
        .job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    ids.sort_unstable();
    drop(c);
    let process = || async {
        let (status, body) = json(
            http.post(format!("{}/v1/jobs/process", s.base))
                .bearer_auth(ADMIN)
                .json(&json!({ "queue": "manual", "limit": 10 }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    process().await;
    for id in &ids {
        assert_eq!(state(*id).await, Some(docket_core::JobState::Failed));
    }
    let [a, b, c] = ids[..] else { unreachable!() };

    // "Retry every failed job", "Retry selected": a page that asks, saying how many, and
    // nothing retried.
    let (status, html) = text(post("/ui/jobs/retry", "all=1".into()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Retry every failed job?"), "{html}");
    assert!(html.contains("<strong>3 jobs</strong>"), "{html}");
    assert!(
        html.contains("name=\"all\" value=\"1\"")
            && html.contains("name=\"confirm\" value=\"yes\""),
        "{html}"
    );
    let (status, html) = text(
        post("/ui/jobs/retry", format!("all=&id={a}&id={b}"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Retry 2 jobs selected?"), "{html}");
    assert!(
        html.contains(&format!("name=\"id\" value=\"{b}\"")),
        "{html}"
    );
    for id in &ids {
        assert_eq!(
            state(*id).await,
            Some(docket_core::JobState::Failed),
            "nothing retried before the confirmation"
        );
    }
    // Nothing ticked: said so, nothing asked.
    let r = post("/ui/jobs/retry", "all=".into()).await.unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/ui/jobs/failed".into())
    );
    assert_eq!(
        flash_of(&r),
        Some((
            "warn".into(),
            "No jobs selected: nothing retried. Tick the jobs first.".into()
        ))
    );

    // Confirmed: retried, and the answer says how many.
    let r = post("/ui/jobs/retry", "all=1&confirm=yes".into())
        .await
        .unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/ui/jobs/failed".into())
    );
    assert_eq!(
        flash_of(&r),
        Some(("done".into(), "3 jobs retried.".into()))
    );
    for id in &ids {
        assert_eq!(state(*id).await, Some(docket_core::JobState::Queued));
    }
    // The page it leads to shows the message once, and clears it; the live refresh neither
    // shows nor clears it.
    let cookie = "; docket_flash=done.3+jobs+retried.".to_owned();
    let r = http
        .get(format!("{}/ui/jobs/failed", s.base))
        .header("cookie", format!("{session}{cookie}"))
        .header("x-docket-refresh", "1")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let (_, html) = text(r).await;
    assert!(!html.contains("id=\"flash\""), "{html}");
    let r = page("/ui/jobs/failed", cookie.clone()).await.unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("docket_flash=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    );
    let (_, html) = text(r).await;
    assert!(
        html.contains("<p class=\"flash done\" role=\"status\" id=\"flash\">3 jobs retried.</p>"),
        "{html}"
    );
    // A message made up in a cookie is shown as text, never as markup.
    let (_, html) = text(
        page(
            "/ui/queues",
            "; docket_flash=warn.%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");

    // Some left alone: the answer says which and why.
    process().await;
    let r = post("/ui/jobs/retry", format!("id={a}&id=987654321&confirm=yes"))
        .await
        .unwrap();
    assert_eq!(
        flash_of(&r),
        Some((
            "warn".into(),
            "1 job retried; 1 job left as it was (job 987654321: no such job).".into()
        ))
    );
    // Discard: asked, then done, counted.
    let (status, html) = text(
        post("/ui/jobs/discard", format!("all=&id={b}&id={c}"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Discard 2 jobs for good?"), "{html}");
    assert_eq!(state(b).await, Some(docket_core::JobState::Failed));
    let r = post("/ui/jobs/discard", format!("id={b}&id={c}&confirm=yes"))
        .await
        .unwrap();
    assert_eq!(
        flash_of(&r),
        Some(("done".into(), "2 jobs discarded.".into()))
    );
    assert_eq!((state(b).await, state(c).await), (None, None));

    // Pausing asks, saying what waits; confirmed, it goes back to the page it came from,
    // where the documents list now says the queue is paused.
    let (status, html) = text(
        post("/ui/queues/manual/pause", "back=%2Fui%2Fdocuments".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Pause queue manual?"), "{html}");
    assert!(html.contains("1 job waiting there now"), "{html}");
    assert!(
        html.contains("name=\"back\" value=\"/ui/documents\""),
        "{html}"
    );
    let (_, html) = text(page("/ui/documents", String::new()).await.unwrap()).await;
    assert!(
        !html.contains("data-paused-queue"),
        "nothing paused yet: {html}"
    );
    let r = post(
        "/ui/queues/manual/pause",
        "back=%2Fui%2Fdocuments&confirm=yes".into(),
    )
    .await
    .unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/ui/documents".into())
    );
    assert_eq!(
        flash_of(&r),
        Some((
            "done".into(),
            "Queue manual paused: no new job starts in it until it is resumed.".into()
        ))
    );
    let r = post("/ui/queues/%3Cb%3Ex/pause", "confirm=yes".into())
        .await
        .unwrap();
    assert_eq!(location(&r), "/ui/queues");
    let (_, html) = text(page("/ui/documents", String::new()).await.unwrap()).await;
    assert!(
        html.contains("data-paused-queue=\"manual\"")
            && html.contains("Queue <strong>manual</strong> is paused (since <time"),
        "{html}"
    );
    assert!(
        html.contains("action=\"/ui/queues/manual/resume\"")
            && html.contains("aria-label=\"Resume queue manual\""),
        "{html}"
    );
    assert!(
        html.contains("Queue <strong>&lt;b&gt;x</strong> is paused") && !html.contains("<b>x"),
        "a queue's name is escaped: {html}"
    );
    // Resume goes back to a dashboard page only; anywhere else, to the queues.
    let r = post(
        "/ui/queues/%3Cb%3Ex/resume",
        "back=%2F%2Fevil.example%2F".into(),
    )
    .await
    .unwrap();
    assert_eq!(location(&r), "/ui/queues");
    let r = post("/ui/queues/manual/resume", "back=%2Fui%2Fdocuments".into())
        .await
        .unwrap();
    assert_eq!(location(&r), "/ui/documents");
    assert_eq!(
        flash_of(&r),
        Some((
            "done".into(),
            "Queue manual resumed: its jobs start again.".into()
        ))
    );
    let (_, html) = text(page("/ui/documents", String::new()).await.unwrap()).await;
    assert!(!html.contains("data-paused-queue"), "{html}");

    // Maintenance jobs (the leader's sweep and cleanup) are hidden from the jobs list unless
    // asked for, and counted.
    let mut conn = s.driver.conn().await.unwrap();
    let maintenance = [
        "docket.sweep_documents",
        "docket.sweep_documents",
        "docket.cleanup",
    ]
    .into_iter()
    .map(|k| {
        let mut j = JobInsertParams::new(k, json!({}));
        j.queue = "sweeps".into();
        j
    })
    .collect();
    conn.job_insert_many(JobInsertManyParams { jobs: maintenance })
        .await
        .unwrap();
    drop(conn);
    let (status, html) = text(page("/ui/jobs", String::new()).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows_of(&html, "docket.sweep_documents"), 0, "{html}");
    assert_eq!(rows_of(&html, "docket.cleanup"), 0, "{html}");
    assert_eq!(rows_of(&html, "test.nobody"), 1, "{html}");
    assert!(html.contains("3 maintenance jobs hidden"), "{html}");
    assert!(html.contains("href=\"/ui/jobs?maintenance=1\""), "{html}");
    assert!(
        html.contains("id=\"f-maintenance\""),
        "the filter shows a switch: {html}"
    );
    let (_, html) = text(page("/ui/jobs?maintenance=1", String::new()).await.unwrap()).await;
    assert_eq!(rows_of(&html, "docket.sweep_documents"), 2, "{html}");
    assert_eq!(rows_of(&html, "docket.cleanup"), 1, "{html}");
    assert!(html.contains("Hide them"), "{html}");
    // Asked for by kind, they show; a queue of nothing else shows none, and says why.
    let (_, html) = text(
        page("/ui/jobs?kind=docket.cleanup", String::new())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rows_of(&html, "docket.cleanup"), 1, "{html}");
    let (_, html) = text(page("/ui/jobs?queue=sweeps", String::new()).await.unwrap()).await;
    assert!(
        html.contains("No jobs match these filters.") && html.contains("3 maintenance jobs hidden"),
        "{html}"
    );
    let (_, html) = text(
        page("/ui/jobs?state=completed", String::new())
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !html.contains("maintenance jobs hidden"),
        "none of them completed: {html}"
    );

    // Every confirmed action is in the audit trail under the dashboard user; the unconfirmed
    // ones did nothing and recorded nothing.
    let (status, audit) = json(
        http.get(format!("{}/v1/audit", s.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<(&str, &str)> = audit["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["actor"].as_str().unwrap()))
        .collect();
    let who = "dashboard:ops";
    assert_eq!(
        actions,
        vec![
            ("resume", who),
            ("resume", who),
            ("pause", who),
            ("pause", who),
            ("discard", who),
            ("retry", who),
            ("retry", who),
        ],
        "{audit}"
    );
}
