//! The built-in alert rules, on both backends, on a clock the test moves: alerts open
//! pending, fire once their condition has held for the rule's `for`, repeat after the repeat
//! interval (or, for dead letters, when new ones come), stay quiet while silenced, and resolve
//! when the condition clears; each notice is a durable delivery job enqueued with the alert's
//! change.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_pipeline::Pipeline;
use docket_pipeline::alerts::{
    ALERT_NOTIFY_KIND, AlertEvent, AlertNotifyArgs, Alerts, AlertsConfig, RuleSettings,
};
use docket_pipeline::config::StagesConfig;
use docket_pipeline::notify::Notifier;

mod common;

fn pipeline<D: Driver>(driver: &D, blobs: &tempfile::TempDir) -> Pipeline<D> {
    let embedder = Arc::new(HashingEmbedder::new(HashingConfig {
        dimensions: 64,
        max_tokens: 256,
    }));
    common::pipeline(driver, blobs.path(), embedder, Notifier::none())
}

/// Only the named rules, with their defaults.
fn only(rules: &[&str]) -> AlertsConfig {
    let mut c = AlertsConfig::default();
    for r in docket_pipeline::alerts::Rule::ALL {
        if !rules.contains(&r.name()) {
            c.rules.insert(
                r.name().to_owned(),
                RuleSettings {
                    enabled: Some(false),
                    ..Default::default()
                },
            );
        }
    }
    c
}

async fn enqueue<D: Driver>(
    p: &Pipeline<D>,
    kind: &str,
    queue: &str,
    run_at: DateTime<Utc>,
    n: usize,
) -> Vec<i64> {
    let mut c = p.driver().conn().await.unwrap();
    let jobs = (0..n)
        .map(|_| {
            let mut j = JobInsertParams::new(kind, serde_json::json!({}));
            j.queue = queue.to_owned();
            j.run_at = Some(run_at);
            j.max_attempts = 1;
            j
        })
        .collect();
    c.job_insert_many(JobInsertManyParams { jobs })
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

/// Claims every due job of `queue` at `now` and ends each as `outcome` says.
async fn work<D: Driver>(
    p: &Pipeline<D>,
    queue: &str,
    now: DateTime<Utc>,
    outcome: impl Fn() -> CompletionOutcome,
) -> usize {
    let mut c = p.driver().conn().await.unwrap();
    let claimed = c
        .job_get_available(JobGetAvailableParams {
            worker_id: "w".into(),
            queue: queue.to_owned(),
            limit: 100,
            now: Some(now),
        })
        .await
        .unwrap();
    let completions = claimed
        .iter()
        .map(|j| JobCompletion {
            id: j.id,
            claim_token: j.claim_token.unwrap(),
            attempt: j.attempts,
            worker_id: "w".into(),
            started_at: now,
            finished_at: now,
            outcome: outcome(),
        })
        .collect();
    c.job_complete_many(JobCompleteManyParams { completions })
        .await
        .unwrap();
    claimed.len()
}

/// The delivery jobs enqueued so far, oldest first.
async fn deliveries<D: Driver>(p: &Pipeline<D>) -> Vec<AlertNotifyArgs> {
    let mut c = p.driver().conn().await.unwrap();
    let mut jobs = c
        .job_list(JobListParams {
            job_types: vec![ALERT_NOTIFY_KIND.to_owned()],
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    jobs.reverse();
    jobs.into_iter()
        .map(|j| serde_json::from_value(j.payload).unwrap())
        .collect()
}

fn events(d: &[AlertNotifyArgs]) -> Vec<(String, String, AlertEvent)> {
    d.iter()
        .map(|a| (a.rule.clone(), a.subject.clone(), a.event))
        .collect()
}

#[both_backends]
async fn alerts_wait_out_their_for_fire_repeat_stay_quiet_when_silenced_and_resolve(
    db: impl TestDb,
) {
    let blobs = tempfile::tempdir().unwrap();
    let p = pipeline(db.driver(), &blobs);
    let t0 = Utc::now().trunc_subsecs(0);
    let clock = ManualClock::new(t0);
    let alerts = Alerts::new(
        p.clone(),
        &only(&["oldest_due_job", "queue_without_worker"]),
        true,
        Arc::new(clock.clone()),
    )
    .unwrap();

    // Three jobs due 25 minutes ago in a queue nobody works.
    enqueue(&p, "docket.noop", "q", t0 - Duration::minutes(25), 3).await;
    let e = alerts.evaluate_once().await.unwrap();
    let mut opened: Vec<_> = e
        .transitions
        .iter()
        .map(|a| (a.rule.as_str(), a.state))
        .collect();
    opened.sort();
    assert_eq!(
        opened,
        [
            ("oldest_due_job", AlertState::Pending),
            ("queue_without_worker", AlertState::Pending)
        ],
        "both hold, neither for 5 minutes yet"
    );
    assert!(e.notices.is_empty() && deliveries(&p).await.is_empty());
    let due = e
        .findings
        .iter()
        .find(|f| f.rule.name() == "oldest_due_job")
        .unwrap();
    assert_eq!(due.subject, "queue=q");
    assert_eq!(due.figures["oldest_due_secs"], 1500.0);
    assert_eq!(due.figures["waiting"], 3);

    // A minute later: still pending, nothing said.
    clock.advance(Duration::minutes(1));
    let e = alerts.evaluate_once().await.unwrap();
    assert!(e.transitions.is_empty() && e.notices.is_empty(), "{e:?}");

    // Five minutes after first seen: both fire, each told once, with a delivery job each.
    clock.advance(Duration::minutes(4));
    let e = alerts.evaluate_once().await.unwrap();
    assert_eq!(e.firing, 2);
    let d = deliveries(&p).await;
    let mut got = events(&d);
    got.sort();
    assert_eq!(
        got,
        [
            (
                "oldest_due_job".into(),
                "queue=q".into(),
                AlertEvent::Firing
            ),
            (
                "queue_without_worker".into(),
                "queue=q".into(),
                AlertEvent::Firing
            ),
        ]
    );
    let firing = d.iter().find(|a| a.rule == "oldest_due_job").unwrap();
    assert_eq!(firing.firing_at, Some(t0 + Duration::minutes(5)));
    assert_eq!(firing.pending_at, t0);
    assert_eq!(firing.link, "/ui/queues");
    assert!(firing.summary.contains("queue q"), "{}", firing.summary);
    let text = firing.text();
    assert!(
        text.contains("is firing, since") && text.contains("Look: /ui/queues"),
        "{text}"
    );
    assert!(
        text.contains("docket alerts silence oldest_due_job --subject queue=q"),
        "{text}"
    );

    // The deliveries are sent (by a worker of the pipeline's queue), or they would wait in
    // that queue and make it alert too.
    let queue = StagesConfig::default().queue;
    assert_eq!(
        work(&p, &queue, clock.now(), || CompletionOutcome::Completed).await,
        2
    );

    // Within the repeat interval: quiet.
    clock.advance(Duration::minutes(30));
    let e = alerts.evaluate_once().await.unwrap();
    assert!(e.notices.is_empty(), "{e:?}");

    // A silence on one of them; past the repeat interval (4 h), only the other repeats.
    {
        let mut c = p.driver().conn().await.unwrap();
        c.alert_silence_insert(&AlertSilenceParams {
            rule: "queue_without_worker".into(),
            subject: Some("queue=q".into()),
            until: clock.now() + Duration::hours(8),
            actor: "test".into(),
            reason: "drained by a cron pinger".into(),
            now: Some(clock.now()),
        })
        .await
        .unwrap();
    }
    clock.advance(Duration::hours(4));
    let e = alerts.evaluate_once().await.unwrap();
    let told: Vec<_> = e
        .notices
        .iter()
        .map(|n| (n.alert.rule.as_str(), n.event))
        .collect();
    assert_eq!(told, [("oldest_due_job", AlertEvent::Repeat)]);
    assert_eq!(
        work(&p, &queue, clock.now(), || CompletionOutcome::Completed).await,
        1
    );

    // A live worker serves the queue and the jobs run: both resolve; only the unsilenced one
    // says so.
    {
        let mut c = p.driver().conn().await.unwrap();
        c.worker_heartbeat(WorkerHeartbeatParams {
            id: "w".into(),
            hostname: "h".into(),
            pid: 1,
            queues: vec!["q".into()],
            lease: Duration::minutes(10),
            now: Some(clock.now()),
        })
        .await
        .unwrap();
    }
    assert_eq!(
        work(&p, "q", clock.now(), || CompletionOutcome::Completed).await,
        3
    );
    clock.advance(Duration::minutes(1));
    let e = alerts.evaluate_once().await.unwrap();
    assert_eq!(e.firing, 0);
    let mut resolved: Vec<_> = e
        .transitions
        .iter()
        .map(|a| (a.rule.as_str(), a.state))
        .collect();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            ("oldest_due_job", AlertState::Resolved),
            ("queue_without_worker", AlertState::Resolved)
        ]
    );
    let told: Vec<_> = e
        .notices
        .iter()
        .map(|n| (n.alert.rule.as_str(), n.event))
        .collect();
    assert_eq!(told, [("oldest_due_job", AlertEvent::Resolved)]);

    // The history keeps each episode with its times.
    let mut c = p.driver().conn().await.unwrap();
    let rows = c
        .alert_list(&AlertListParams {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for a in &rows {
        assert_eq!(a.pending_at, t0);
        assert_eq!(a.firing_at, Some(t0 + Duration::minutes(5)));
        assert_eq!(a.resolved_at, Some(clock.now()));
    }
}

#[both_backends]
async fn dead_letters_tell_of_each_new_batch_and_a_stage_fails_past_its_share(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    let p = pipeline(db.driver(), &blobs);
    let t0 = Utc::now().trunc_subsecs(0);
    let clock = ManualClock::new(t0);
    let alerts = Alerts::new(
        p.clone(),
        &only(&["dead_letters", "stage_failing", "queue_paused"]),
        true,
        Arc::new(clock.clone()),
    )
    .unwrap();
    let fail = || CompletionOutcome::Failed {
        error: "parse failed: not a PDF".into(),
    };

    // Three parse jobs dead-lettered: `dead_letters` fires at once (no `for`); three
    // attempts are too few for `stage_failing` (at least 5).
    enqueue(&p, "docket.parse", "docket", t0, 3).await;
    assert_eq!(work(&p, "docket", t0, fail).await, 3);
    let e = alerts.evaluate_once().await.unwrap();
    let told: Vec<_> = e
        .notices
        .iter()
        .map(|n| (n.alert.rule.as_str(), n.event))
        .collect();
    assert_eq!(told, [("dead_letters", AlertEvent::Firing)]);
    assert_eq!(e.notices[0].alert.figures["new"], 3);

    // A minute later, nothing new: quiet. Then two more: told again (each batch), and now the
    // parse stage has failed 5 of 5 attempts.
    clock.advance(Duration::minutes(1));
    assert!(alerts.evaluate_once().await.unwrap().notices.is_empty());
    enqueue(&p, "docket.parse", "docket", clock.now(), 2).await;
    assert_eq!(work(&p, "docket", clock.now(), fail).await, 2);
    clock.advance(Duration::minutes(1));
    let e = alerts.evaluate_once().await.unwrap();
    let mut told: Vec<_> = e
        .notices
        .iter()
        .map(|n| (n.alert.rule.clone(), n.alert.subject.clone(), n.event))
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            ("dead_letters".into(), String::new(), AlertEvent::Repeat),
            (
                "stage_failing".into(),
                "stage=parse".into(),
                AlertEvent::Firing
            ),
        ]
    );
    let stage = &e
        .notices
        .iter()
        .find(|n| n.alert.rule == "stage_failing")
        .unwrap()
        .alert;
    assert_eq!(stage.figures["failed"], 5);
    assert_eq!(stage.figures["attempts"], 5);

    // Ten minutes without new dead letters: `dead_letters` resolves (its window is 10
    // minutes); the dead letters themselves stay for a person.
    clock.advance(Duration::minutes(11));
    let e = alerts.evaluate_once().await.unwrap();
    let resolved: Vec<_> = e
        .transitions
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .map(|a| a.rule.as_str())
        .collect();
    assert!(resolved.contains(&"dead_letters"), "{resolved:?}");

    // A queue paused for more than an hour.
    let mut c = p.driver().conn().await.unwrap();
    c.queue_set_paused(QueueSetPausedParams {
        name: "bulk".into(),
        paused: true,
        now: Some(clock.now()),
    })
    .await
    .unwrap();
    drop(c);
    clock.advance(Duration::minutes(59));
    assert!(
        !alerts
            .evaluate_once()
            .await
            .unwrap()
            .findings
            .iter()
            .any(|f| f.rule.name() == "queue_paused"),
        "not yet an hour"
    );
    clock.advance(Duration::minutes(2));
    let e = alerts.evaluate_once().await.unwrap();
    let paused = e
        .notices
        .iter()
        .find(|n| n.alert.rule == "queue_paused")
        .expect("fires");
    assert_eq!(paused.alert.subject, "queue=bulk");
    assert!(
        paused
            .alert
            .summary
            .contains("queue bulk is paused, for 61 min"),
        "{}",
        paused.alert.summary
    );
}

#[both_backends]
async fn without_a_channel_alerts_are_recorded_and_nothing_is_enqueued(db: impl TestDb) {
    let blobs = tempfile::tempdir().unwrap();
    let p = pipeline(db.driver(), &blobs);
    let t0 = Utc::now().trunc_subsecs(0);
    let clock = ManualClock::new(t0);
    let alerts = Alerts::new(
        p.clone(),
        &only(&["dead_letters_high"]),
        false,
        Arc::new(clock.clone()),
    )
    .unwrap();
    let mut config = only(&["dead_letters_high"]);
    config.rules.insert(
        "dead_letters_high".into(),
        RuleSettings {
            threshold: Some(1.0),
            ..Default::default()
        },
    );
    let low = Alerts::new(p.clone(), &config, false, Arc::new(clock.clone())).unwrap();
    enqueue(&p, "docket.chunk", "docket", t0, 2).await;
    work(&p, "docket", t0, || CompletionOutcome::Failed {
        error: "x".into(),
    })
    .await;
    assert!(
        alerts.evaluate_once().await.unwrap().findings.is_empty(),
        "2 is not above 100"
    );
    let e = low.evaluate_once().await.unwrap();
    assert_eq!(e.firing, 1);
    assert_eq!(e.transitions[0].notified_at, None, "nobody to tell");
    assert!(e.notices.is_empty(), "{e:?}");
    clock.advance(Duration::hours(5));
    assert!(
        low.evaluate_once().await.unwrap().notices.is_empty(),
        "no reminders either"
    );
    assert!(deliveries(&p).await.is_empty());
}

async fn next_hook(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, axum::body::Bytes)>,
) -> (axum::http::HeaderMap, axum::body::Bytes) {
    tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("a webhook arrives")
        .unwrap()
}

/// The notices reach a real webhook receiver (Standard Webhooks, signed; then the Slack
/// body) and a real SMTP server, as durable jobs a worker runs; a receiver that answers 500
/// gets the notice again, with the same `webhook-id`.
#[both_backends]
async fn notices_reach_a_webhook_and_a_mailbox_as_durable_jobs(db: impl TestDb) {
    use axum::body::Bytes;
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let _ = tx.send((headers, body));
                // The first delivery fails: the job retries it.
                if n == 0 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sink = docket_conformance::smtp::Sink::start().await;

    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut config = only(&["dead_letters_high"]);
    config.rules.insert(
        "dead_letters_high".into(),
        RuleSettings {
            threshold: Some(0.0),
            ..Default::default()
        },
    );
    config.dashboard_url = Some("https://docket.example.com/".into());
    config.webhook.url = Some(format!("http://{addr}/hook"));
    config.webhook.secret = Some(secret.into());
    config.webhook.allow_private = true;
    config.email.to = vec!["ops@example.com".into()];
    let notify_email = docket_notify::EmailConfig {
        smtp_url: Some(sink.url()),
        from: "docket <docket@example.com>".into(),
        ..Default::default()
    };
    let delivery = docket_pipeline::alerts::AlertDelivery::new(
        &config.webhook,
        &config.email,
        &Default::default(),
        &notify_email,
    )
    .unwrap();
    assert!(delivery.any());

    let blobs = tempfile::tempdir().unwrap();
    let p = pipeline(db.driver(), &blobs);
    let alerts = Alerts::new(p.clone(), &config, true, Arc::new(SystemClock)).unwrap();
    let now = Utc::now();
    enqueue(&p, "docket.chunk", "bulk", now, 1).await;
    work(&p, "bulk", now, || CompletionOutcome::Failed {
        error: "chunking failed".into(),
    })
    .await;
    let e = alerts.evaluate_once().await.unwrap();
    assert_eq!(e.notices.len(), 1, "{e:?}");

    // A worker with a one-second backoff runs the delivery job.
    let mut workers = docket_queue::Workers::new();
    delivery.register(&mut workers);
    let h = docket_queue::Runtime::start(
        p.driver().clone(),
        workers,
        docket_queue::RuntimeConfig {
            poll_interval: std::time::Duration::from_millis(50),
            maintenance: None,
            ..Default::default()
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let (h1, b1) = next_hook(&mut rx).await;
    // It failed with 500: the job waits for its retry (a minute); an operator runs it now.
    let job = loop {
        let mut c = p.driver().conn().await.unwrap();
        let jobs = c
            .job_list(JobListParams {
                job_types: vec![ALERT_NOTIFY_KIND.to_owned()],
                states: vec![JobState::Retrying],
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(j) = jobs.first() {
            break j.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        job.last_error.as_deref().unwrap_or("").contains("500"),
        "{job:?}"
    );
    let mut c = p.driver().conn().await.unwrap();
    c.job_run_now(JobRunNowParams {
        ids: vec![job.id],
        ..Default::default()
    })
    .await
    .unwrap();
    drop(c);
    let (h2, b2) = next_hook(&mut rx).await;
    assert_eq!(
        h1.get("webhook-id"),
        h2.get("webhook-id"),
        "a retry keeps its id"
    );
    let data = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap()["data"].clone();
    assert_eq!(data(&b1), data(&b2), "the same notice");
    let header = |n: &str| h2.get(n).and_then(|v| v.to_str().ok());
    docket_notify::verify(
        &[docket_notify::WebhookSigner::new(secret).unwrap()],
        &docket_notify::WebhookHeaders::from_lookup(header),
        &b2,
        Utc::now().timestamp(),
        std::time::Duration::from_secs(300),
    )
    .expect("signature verifies");
    let event: serde_json::Value = serde_json::from_slice(&b2).unwrap();
    assert_eq!(event["type"], "alert.firing");
    assert_eq!(event["data"]["rule"], "dead_letters_high");
    assert_eq!(event["data"]["severity"], "ticket");
    assert_eq!(event["data"]["figures"]["dead_letters"], 1);
    assert_eq!(
        event["data"]["link"],
        "https://docket.example.com/ui/jobs/failed"
    );

    let mail = sink.wait_for(1).await;
    assert!(!mail.is_empty(), "the alert email arrives");
    let raw = &mail[0].1;
    assert!(raw.contains("MIME-Version: 1.0"), "{raw}");
    assert!(
        raw.contains("[docket FIRING] ticket: dead_letters_high"),
        "{raw}"
    );
    h.shutdown().await;

    // The Slack body: one line of text a chat shows as it is.
    config.webhook.format = docket_pipeline::alerts::WebhookFormat::Slack;
    let slack = docket_pipeline::alerts::AlertDelivery::new(
        &config.webhook,
        &Default::default(),
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    slack
        .deliver(&AlertNotifyArgs::new(
            &e.notices[0].alert,
            AlertEvent::Resolved,
            "/ui/jobs/failed".into(),
        ))
        .await
        .unwrap();
    let (_, b3) = next_hook(&mut rx).await;
    let body: serde_json::Value = serde_json::from_slice(&b3).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("[docket RESOLVED] ticket: dead_letters_high"),
        "{text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}
