//! The built-in alerts over a real socket, on both backends: `GET /v1/alerts`, silences by API
//! (admin only, audited), the banner every dashboard page shows while an alert fires, the
//! Alerts page and its silence form, and `docket_alerts_firing` in `/metrics`.

use chrono::Utc;
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::{
    AlertOpenParams, AlertState, AlertUpdateParams, CompletionOutcome, JobCompleteManyParams,
    JobCompletion, JobGetAvailableParams, JobInsertManyParams, JobInsertParams, MonitorStore,
    QueueDriver, QueueExecutor,
};
use docket_http::auth::ApiKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;

use common::{ADMIN, READER, json};

fn keys() -> ApiKeys {
    common::admin_and_reader()
}

/// One firing alert (`queue_paused` for `queue=bulk`) and one that resolved.
async fn alerts<D: QueueDriver<Conn: MonitorStore>>(driver: &D) {
    let mut c = driver.conn().await.unwrap();
    let now = Utc::now();
    let open = |rule: &str, subject: &str, state| AlertOpenParams {
        rule: rule.into(),
        subject: subject.into(),
        state,
        severity: "ticket".into(),
        summary: format!("{rule}: the figures"),
        figures: json!({"paused_secs": 4000}),
        now,
    };
    let old = c
        .alert_open(&open("dead_letters", "", AlertState::Firing))
        .await
        .unwrap();
    c.alert_update(&AlertUpdateParams {
        id: old.id,
        from: AlertState::Firing,
        to: AlertState::Resolved,
        summary: old.summary.clone(),
        figures: old.figures.clone(),
        notified: false,
        now,
    })
    .await
    .unwrap();
    c.alert_open(&open("queue_paused", "queue=bulk", AlertState::Firing))
        .await
        .unwrap();
}

#[both_backends]
async fn alerts_are_listed_and_silenced_through_the_api(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, Some(keys())).await;
    alerts(db.driver()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.base);

    let (status, body) = json(
        http.get(url("/v1/alerts"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let open = body["alerts"].as_array().unwrap();
    assert_eq!(open.len(), 1, "open ones by default: {body}");
    assert_eq!(open[0]["rule"], "queue_paused");
    assert_eq!(open[0]["subject"], "queue=bulk");
    assert_eq!(open[0]["state"], "firing");
    assert_eq!(open[0]["silenced"], false);
    assert_eq!(open[0]["link"], "/ui/queues");
    assert_eq!(body["silences"], json!([]));
    let (_, all) = json(
        http.get(url("/v1/alerts?state=all"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 2, "{all}");
    let (_, resolved) = json(
        http.get(url("/v1/alerts?state=resolved&rule=dead_letters"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resolved["alerts"][0]["state"], "resolved", "{resolved}");
    let (status, body) = json(
        http.get(url("/v1/alerts?state=loud"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Silencing takes the admin scope, a known rule and a sane length.
    let silence = |key: &str, body: Value| {
        http.post(url("/v1/alerts/silences"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let ok = json!({"rule": "queue_paused", "subject": "queue=bulk", "for_secs": 3600, "reason": "reindexing"});
    assert_eq!(
        silence(READER, ok.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let (status, body) = json(
        silence(ADMIN, json!({"rule": "queue_pasued", "for_secs": 3600}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no rule named \"queue_pasued\""),
        "{body}"
    );
    let (status, _) = json(
        silence(ADMIN, json!({"rule": "queue_paused", "for_secs": 5}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = json(silence(ADMIN, ok).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["silence"]["id"].as_i64().unwrap();
    assert_eq!(body["silence"]["actor"], "key:ops");

    let (_, body) = json(
        http.get(url("/v1/alerts"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["alerts"][0]["silenced"], true, "{body}");
    assert_eq!(body["silences"][0]["id"], id);
    let (_, audit) = json(
        http.get(url("/v1/audit?action=silence"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(audit["actions"][0]["target"], "queue_paused", "{audit}");

    let end = |key: &str| {
        http.delete(url(&format!("/v1/alerts/silences/{id}")))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(end(READER).await.unwrap().status(), StatusCode::FORBIDDEN);
    let (status, body) = json(end(ADMIN).await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ended": id})));
    assert_eq!(end(ADMIN).await.unwrap().status(), StatusCode::NOT_FOUND);
    let (_, body) = json(
        http.get(url("/v1/alerts"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["alerts"][0]["silenced"], false, "{body}");
}

/// Only one scrape at a time in this binary: the gauges are the process's.
static SCRAPE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[both_backends]
async fn every_page_shows_the_banner_until_the_alert_is_silenced(db: impl TestDb) {
    let s = common::serve(db.driver(), 256 * 1024, None).await;
    alerts(db.driver()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |p: &str| {
        let r = http.get(format!("{}{p}", s.base)).send();
        async move { r.await.unwrap().text().await.unwrap() }
    };
    for p in ["/", "/ui/jobs", "/ui/documents", "/ui/queues", "/ui/alerts"] {
        let html = page(p).await;
        let start = html
            .find("id=\"alert-banner\"")
            .unwrap_or_else(|| panic!("{p}: no banner: {html}"));
        let banner = &html[start..start + html[start..].find("</div>").unwrap()];
        assert!(
            banner.contains("<code>queue_paused</code>"),
            "{p}: {banner}"
        );
        assert!(banner.contains("queue=bulk"), "{p}: {banner}");
        assert!(
            !banner.contains("dead_letters"),
            "{p}: the resolved one is not in the banner: {banner}"
        );
    }
    let alerts_page = page("/ui/alerts").await;
    assert!(
        alerts_page.contains("id=\"alerts-history\""),
        "{alerts_page}"
    );
    assert!(
        alerts_page.contains("dead_letters: the figures"),
        "the history"
    );

    {
        let _one = SCRAPE.lock().await;
        let metrics = page("/metrics").await;
        assert!(
            metrics.contains("docket_alerts_firing{rule=\"queue_paused\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("docket_alerts_firing{rule=\"dead_letters\"} 0"),
            "{metrics}"
        );
    }

    // Silence it from the Alerts page's form: the banner goes; the page lists the silence.
    let r = http
        .post(format!("{}/ui/alerts/silence", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("rule=queue_paused&subject=queue%3Dbulk&for=3600&reason=reindexing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = page("/").await;
    assert!(!html.contains("class=\"alert-banner\""), "{html}");
    let alerts_page = page("/ui/alerts").await;
    assert!(alerts_page.contains("firing (silenced)"), "{alerts_page}");
    assert!(alerts_page.contains("reindexing"), "{alerts_page}");
    let id = {
        let mut c = db.driver().conn().await.unwrap();
        c.alert_silence_list(None).await.unwrap()[0].id
    };
    let r = http
        .post(format!("{}/ui/alerts/silences/{id}/end", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(page("/").await.contains("class=\"alert-banner\""));

    // The provider failing: the overview says since when and how many jobs wait for it.
    // A notice that could not be delivered: the Alerts page says so, with where to look.
    {
        let mut c = db.driver().conn().await.unwrap();
        c.alert_open(&AlertOpenParams {
            rule: "embed_provider_failing".into(),
            subject: "provider=hashing:384".into(),
            state: AlertState::Pending,
            severity: "page".into(),
            summary: "embedding provider hashing:384 failing: its circuit breaker is open; 6 job(s) waiting for it".into(),
            figures: json!({"provider": "hashing:384", "waiting": 6}),
            now: Utc::now(),
        })
        .await
        .unwrap();
        let mut job = JobInsertParams::new(docket_pipeline::alerts::ALERT_NOTIFY_KIND, json!({}));
        job.queue = "nowhere".into();
        job.max_attempts = 1;
        c.job_insert_many(JobInsertManyParams { jobs: vec![job] })
            .await
            .unwrap();
        let got = c
            .job_get_available(JobGetAvailableParams {
                worker_id: "w".into(),
                queue: "nowhere".into(),
                limit: 1,
                now: None,
            })
            .await
            .unwrap();
        c.job_complete_many(JobCompleteManyParams {
            completions: vec![JobCompletion {
                id: got[0].id,
                claim_token: got[0].claim_token.unwrap(),
                attempt: 1,
                worker_id: "w".into(),
                started_at: Utc::now(),
                finished_at: Utc::now(),
                outcome: CompletionOutcome::Failed {
                    error: "webhook answered 500".into(),
                },
            }],
        })
        .await
        .unwrap();
    }
    let overview = page("/").await;
    assert!(overview.contains("id=\"provider-failing\""), "{overview}");
    assert!(
        overview.contains("Embedding provider <code>hashing:384</code> failing since"),
        "{overview}"
    );
    assert!(overview.contains("6 jobs waiting for it"), "{overview}");
    let alerts_page = page("/ui/alerts").await;
    assert!(
        alerts_page.contains("1 alert notice could not be delivered"),
        "{alerts_page}"
    );
}

/// Analytics, once rolled up: per day, per hour and the failure reasons, over the API and on
/// the dashboard's Analytics page with links to example jobs.
#[both_backends]
async fn analytics_are_served_and_shown(db: impl TestDb) {
    use docket_core::{AnalyticsStoreParams, AttemptOutcome, AttemptRollupRow, FailureReasonRow};
    let s = common::serve(db.driver(), 256 * 1024, None).await;
    let hour = Utc::now() - chrono::Duration::hours(1);
    let hour = chrono::DurationRound::duration_trunc(hour, chrono::Duration::hours(1)).unwrap();
    let row = |outcome, attempts, total_ms, p95_ms| AttemptRollupRow {
        hour,
        job_type: "docket.embed".into(),
        queue: "default".into(),
        outcome,
        attempts,
        total_ms,
        p50_ms: 100,
        p95_ms,
        p99_ms: p95_ms,
        max_ms: p95_ms,
    };
    {
        let mut c = db.driver().conn().await.unwrap();
        c.analytics_store(&AnalyticsStoreParams {
            rollup: vec![
                row(AttemptOutcome::Completed, 40, 8000, 450),
                row(AttemptOutcome::Failed, 2, 600, 300),
            ],
            reasons: vec![FailureReasonRow {
                job_type: "docket.embed".into(),
                reason: "embedding failed: HTTP <n> from <url>".into(),
                example: "embedding failed: HTTP 401 from https://api.example.com/v1".into(),
                count: 2,
                first_seen: hour,
                last_seen: hour + chrono::Duration::minutes(20),
                example_job_ids: vec![77, 75],
            }],
            rolled_until: hour + chrono::Duration::hours(1),
        })
        .await
        .unwrap();
    }
    let http = reqwest::Client::new();
    let (status, body) = json(
        http.get(format!("{}/v1/analytics?days=2", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let day = &body["daily"][0];
    assert_eq!(day["job_type"], "docket.embed");
    assert_eq!(
        (day["completed"].as_i64(), day["failed"].as_i64()),
        (Some(40), Some(2))
    );
    assert_eq!(day["completed_mean_ms"], 200);
    assert_eq!(day["completed_p95_ms_max"], 450);
    assert_eq!(body["hourly"].as_array().unwrap().len(), 2);
    assert_eq!(body["failure_reasons"][0]["count"], 2);
    let (status, _) = json(
        http.get(format!("{}/v1/analytics?days=0", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let html = http
        .get(format!("{}/ui/analytics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("embedding failed: HTTP &lt;n&gt; from &lt;url&gt;"),
        "{html}"
    );
    assert!(html.contains("<a href=\"/ui/jobs/77\">77</a>"), "{html}");
    assert!(
        html.contains("200 / 450"),
        "the embed stage's mean and p95: {html}"
    );
}
