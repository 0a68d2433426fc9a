//! The conformance suite on PostgreSQL (a fresh schema per test), plus what only PostgreSQL
//! does: wake-ups across processes, and the original system's monitoring SQL.
//!
//! Needs a server: `DOCKET_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`. An unreachable server fails every test.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use docket_conformance::harness::{self, TempPgDatabase};
use docket_core::{
    CompletionOutcome, JobCompleteManyParams, JobCompletion, JobGetAvailableParams,
    JobInsertManyParams, JobInsertParams, JobRow, JobState, QueueDriver, QueueExecutor,
    Transaction,
};
use serde_json::json;
use sqlx::{Row, ValueRef};

docket_conformance::driver_test_suite!(docket_conformance::harness::postgres());

/// A `NOTIFY` from one driver wakes another driver (another process) listening on the same
/// database, for plain and transactional inserts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_cross_process() {
    // A database of its own: NOTIFY channels are per database, and other tests insert too.
    let db = TempPgDatabase::create().await;
    // Both drivers use the same schema (not `public`), as two processes given the same URL.
    let schema = "docket_x";
    {
        let mut admin = harness::pg_admin_connect(db.url()).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create schema");
    }
    let url = harness::pg_url_with_search_path(db.url(), schema);
    // The sender does not listen: any wake-up the receiver sees came through the server.
    let sender = harness::connect_pg(&url, false);
    sender.migrate().await.expect("migrate");
    let receiver = harness::connect_pg(&url, true);

    // The listener wakes its workers once its LISTEN is in place (inserts made before it
    // listened were never announced to it).
    let w = receiver.wakeups();
    let listening = w.notify().notified();
    tokio::pin!(listening);
    listening.as_mut().enable();
    tokio::time::timeout(StdDuration::from_secs(10), listening)
        .await
        .expect("the receiver's listener never reported itself connected");

    // A plain insert.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let id = {
        let mut c = sender.conn().await.expect("conn");
        let res = c
            .job_insert_many(JobInsertManyParams {
                jobs: vec![JobInsertParams::new("x", json!({"n": 1}))],
            })
            .await
            .expect("insert");
        res[0].id
    };
    tokio::time::timeout(StdDuration::from_secs(10), n)
        .await
        .expect("no cross-process wake-up after an insert");
    let mut rc = receiver.conn().await.expect("conn");
    assert!(
        rc.job_get(id).await.expect("job_get").is_some(),
        "the receiver sees the job"
    );
    drop(rc);

    // A transactional insert: announced at commit.
    let n = w.notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    let mut tx = sender.begin().await.expect("begin");
    tx.job_insert_many(JobInsertManyParams {
        jobs: vec![JobInsertParams::new("x", json!({"n": 2}))],
    })
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    tokio::time::timeout(StdDuration::from_secs(10), n)
        .await
        .expect("no cross-process wake-up after a committed insert");
}

/// A broadcast published by one driver reaches a driver (another process) listening on the
/// same database, and the sender's own subscribers at once (even before its listener is
/// connected) and only once; a driver that does not listen keeps its
/// broadcasts to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_cross_process() {
    let db = TempPgDatabase::create().await;
    let a = harness::connect_pg(db.url(), true);
    let b = harness::connect_pg(db.url(), true);
    let quiet = harness::connect_pg(db.url(), false);
    let mut at_b = b.broadcasts().subscribe();
    let mut at_a = a.broadcasts().subscribe();
    let mut at_quiet = quiet.broadcasts().subscribe();
    // The listeners connect in the background: publish until the first message crosses.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    let mut hellos = 0;
    let got = loop {
        a.broadcasts().publish("hello".into());
        hellos += 1;
        match tokio::time::timeout(StdDuration::from_millis(200), at_b.recv()).await {
            Ok(m) => break m.expect("receive"),
            Err(_) => assert!(
                std::time::Instant::now() < deadline,
                "no broadcast crossed to the other driver"
            ),
        }
    };
    assert_eq!(&*got, "hello");
    let own = tokio::time::timeout(StdDuration::from_secs(5), at_a.recv())
        .await
        .expect("the sender's own subscriber hears it")
        .expect("receive");
    assert_eq!(&*own, "hello");
    // In order, after the first.
    for i in 0..50 {
        a.broadcasts().publish(format!("m{i}"));
    }
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let m = tokio::time::timeout(StdDuration::from_secs(5), at_b.recv())
            .await
            .expect("broadcasts keep arriving")
            .expect("receive");
        if m.starts_with('m') {
            seen.push(m.to_string());
        }
    }
    assert_eq!(seen, (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // The sender's subscribers hear each of its own broadcasts once: at publish time, not
    // again when its listener receives the NOTIFY.
    // Every hello too, the ones published before its listener was connected included.
    let mut own = Vec::new();
    let mut own_hellos = 1;
    while let Ok(Ok(m)) = tokio::time::timeout(StdDuration::from_millis(500), at_a.recv()).await {
        if m.starts_with('m') {
            own.push(m.to_string());
        } else if &*m == "hello" {
            own_hellos += 1;
        }
    }
    assert_eq!(own, (0..50).map(|i| format!("m{i}")).collect::<Vec<_>>());
    assert_eq!(
        own_hellos, hellos,
        "the sender heard each of its hellos once"
    );
    // Without LISTEN nothing arrives from elsewhere; its own broadcasts still do.
    assert!(
        tokio::time::timeout(StdDuration::from_millis(300), at_quiet.recv())
            .await
            .is_err(),
        "a driver that does not listen heard another's broadcast"
    );
    quiet.broadcasts().publish("mine".into());
    assert_eq!(&*at_quiet.recv().await.expect("receive"), "mine");
}

/// A database no one has migrated reports every migration as pending, and none after.
#[tokio::test]
async fn pending_migrations_before_and_after_migrate() {
    let db = TempPgDatabase::create().await;
    let d = harness::connect_pg(db.url(), false);
    let pending = d.pending_migrations().await.expect("pending");
    assert!(
        pending.len() >= 2,
        "every migration is pending: {pending:?}"
    );
    d.migrate().await.expect("migrate");
    assert!(d.pending_migrations().await.expect("pending").is_empty());
}

type PgConn = <docket_postgres::PgDriver as QueueDriver>::Conn;

async fn insert(c: &mut PgConn, jobs: Vec<JobInsertParams>) -> Vec<i64> {
    c.job_insert_many(JobInsertManyParams { jobs })
        .await
        .expect("insert")
        .iter()
        .map(|r| r.id)
        .collect()
}

async fn claim(c: &mut PgConn, queue: &str, limit: i32, at: Option<DateTime<Utc>>) -> Vec<JobRow> {
    c.job_get_available(JobGetAvailableParams {
        worker_id: "w".into(),
        queue: queue.into(),
        limit,
        now: at,
    })
    .await
    .expect("claim")
}

/// The original system's monitoring statements, copied byte for byte into
/// `fixtures/seed_monitoring.sql` from its documentation, split into statements.
fn seed_statements() -> Vec<String> {
    include_str!("../fixtures/seed_monitoring.sql")
        .split_inclusive(";\n")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn statement(all: &[String], marker: &str) -> String {
    let found: Vec<_> = all.iter().filter(|s| s.contains(marker)).collect();
    assert_eq!(
        found.len(),
        1,
        "one fixture statement containing {marker:?}: {all:#?}"
    );
    found[0].clone()
}

/// Every monitoring statement of the original system runs as written against the migrated
/// schema, and answers what it should.
#[tokio::test]
async fn seed_monitoring_sql() {
    let db = harness::postgres().await;
    let pool = db.pg().pool().clone();
    let all = seed_statements();
    assert_eq!(all.len(), 6, "fixture statements: {all:#?}");

    let now = Utc::now().trunc_subsecs(0);
    let due = now - Duration::minutes(1);
    let mut c = db.pg().conn().await.expect("conn");
    let job = |t: &str, q: &str| {
        let mut j = JobInsertParams::new(t, json!({}));
        j.queue = q.to_owned();
        j.run_at = Some(due - Duration::days(10));
        j
    };
    let p = insert(
        &mut c,
        vec![job("parse", "p"), job("parse", "p"), job("parse", "p")],
    )
    .await;
    let e = insert(&mut c, vec![job("embed", "e-q"), job("embed", "e-run")]).await;
    let old = insert(&mut c, vec![job("chunk", "old-c"), job("notify", "old-f")]).await;

    // Claims on the database's clock; completions with explicit times.
    let got = claim(&mut c, "p", 3, None).await;
    assert_eq!(got.len(), 3);
    let started = got[0].started_at.expect("started_at");
    let token = |id: i64| {
        got.iter()
            .find(|j| j.id == id)
            .and_then(|j| j.claim_token)
            .expect("claimed")
    };
    let fin = |id, secs, outcome| JobCompletion {
        id,
        claim_token: token(id),
        attempt: 1,
        worker_id: "w".into(),
        started_at: started,
        finished_at: started + Duration::seconds(secs),
        outcome,
    };
    let failed = |e: &str| CompletionOutcome::Failed { error: e.into() };
    let done = c
        .job_complete_many(JobCompleteManyParams {
            completions: vec![
                fin(p[0], 2, CompletionOutcome::Completed),
                fin(p[1], 4, CompletionOutcome::Completed),
                fin(p[2], 1, failed("parse error")),
            ],
        })
        .await
        .expect("complete");
    assert_eq!(done.len(), 3);
    // A running job whose worker never heartbeated: stuck.
    assert_eq!(claim(&mut c, "e-run", 1, None).await.len(), 1);

    // Finished 8 days ago, created 2 days ago (outside the last 24 hours).
    let eight_days_ago = now - Duration::days(8);
    for (queue, outcome) in [
        ("old-c", CompletionOutcome::Completed),
        ("old-f", failed("old failure")),
    ] {
        let start = eight_days_ago - Duration::seconds(10);
        let got = claim(&mut c, queue, 1, Some(start)).await;
        assert_eq!(got.len(), 1);
        let done = c
            .job_complete_many(JobCompleteManyParams {
                completions: vec![JobCompletion {
                    id: got[0].id,
                    claim_token: got[0].claim_token.expect("claimed"),
                    attempt: 1,
                    worker_id: "w".into(),
                    started_at: start,
                    finished_at: eight_days_ago,
                    outcome,
                }],
            })
            .await
            .expect("complete");
        assert_eq!(done.len(), 1);
    }
    drop(c);
    sqlx::query(
        "UPDATE processing_jobs SET created_at = now() - interval '2 days' WHERE id = ANY($1)",
    )
    .bind(&old)
    .execute(&pool)
    .await
    .expect("backdate");

    // SELECT * FROM job_queue_stats;
    let rows = sqlx::query(&statement(&all, "job_queue_stats"))
        .fetch_all(&pool)
        .await
        .expect("job_queue_stats");
    let mut stats: Vec<(String, String, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get("job_type"),
                r.get("queue"),
                r.get("status"),
                r.get("count"),
            )
        })
        .collect();
    stats.sort();
    let row = |t: &str, q: &str, s: JobState, n: i64| (t.into(), q.into(), s.to_string(), n);
    assert_eq!(
        stats,
        vec![
            row("chunk", "old-c", JobState::Completed, 1),
            row("embed", "e-q", JobState::Queued, 1),
            row("embed", "e-run", JobState::Running, 1),
            row("notify", "old-f", JobState::Failed, 1),
            row("parse", "p", JobState::Completed, 2),
            row("parse", "p", JobState::Failed, 1),
        ]
    );

    // SELECT * FROM failed_jobs;
    let rows = sqlx::query(&statement(&all, "failed_jobs"))
        .fetch_all(&pool)
        .await
        .expect("failed_jobs");
    let mut failed_ids: Vec<i64> = rows.iter().map(|r| r.get("id")).collect();
    failed_ids.sort();
    assert_eq!(failed_ids, vec![p[2], old[1]]);
    for r in &rows {
        let err: Option<String> = r.get("last_error");
        assert!(err.is_some(), "failed_jobs.last_error");
        let failed_at: Option<DateTime<Utc>> = r.get("failed_at");
        assert!(failed_at.is_some(), "failed_jobs.failed_at");
    }

    // SELECT * FROM stuck_jobs;
    let rows = sqlx::query(&statement(&all, "stuck_jobs"))
        .fetch_all(&pool)
        .await
        .expect("stuck_jobs");
    let stuck: Vec<i64> = rows.iter().map(|r| r.get("id")).collect();
    assert_eq!(stuck, vec![e[1]]);

    // Current job queue status.
    let rows = sqlx::query(&statement(&all, "GROUP BY job_type, status"))
        .fetch_all(&pool)
        .await
        .expect("current job queue status");
    let mut current: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.get("job_type"), r.get("status"), r.get("count")))
        .collect();
    current.sort();
    let row = |t: &str, s: &str, n: i64| (t.to_owned(), s.to_owned(), n);
    assert_eq!(
        current,
        vec![
            row("chunk", "completed", 1),
            row("embed", "queued", 1),
            row("embed", "running", 1),
            row("notify", "failed", 1),
            row("parse", "completed", 2),
            row("parse", "failed", 1),
        ]
    );

    // Recent job performance (the last 24 hours).
    let rows = sqlx::query(&statement(&all, "INTERVAL '24 hours'"))
        .fetch_all(&pool)
        .await
        .expect("recent job performance");
    let mut recent: Vec<(String, i64, i64, i64, bool)> = rows
        .iter()
        .map(|r| {
            let avg_is_null = r
                .try_get_raw("avg_duration_seconds")
                .expect("avg_duration_seconds")
                .is_null();
            (
                r.get("job_type"),
                r.get("total_jobs"),
                r.get("successful"),
                r.get("failed"),
                avg_is_null,
            )
        })
        .collect();
    recent.sort();
    assert_eq!(
        recent,
        vec![
            ("embed".to_owned(), 2, 0, 0, true),
            ("parse".to_owned(), 3, 2, 1, false),
        ],
        "jobs created in the last 24 hours, by type (chunk and notify are older)"
    );
    let avg: f64 = sqlx::query_scalar(&format!(
        "SELECT avg_duration_seconds::float8 FROM ({}) t WHERE job_type = 'parse'",
        statement(&all, "INTERVAL '24 hours'").trim_end_matches(';')
    ))
    .fetch_one(&pool)
    .await
    .expect("average");
    assert!(
        (avg - 7.0 / 3.0).abs() < 1e-6,
        "avg_duration_seconds of parse: {avg}"
    );

    // SELECT cleanup_old_jobs(): completed over 7 days ago goes; failed stays 30 days.
    let deleted: i32 = sqlx::query_scalar(&statement(&all, "cleanup_old_jobs"))
        .fetch_one(&pool)
        .await
        .expect("cleanup_old_jobs()");
    assert_eq!(
        deleted, 1,
        "cleanup_old_jobs() deletes the 8-day-old completed job only"
    );
    let mut c = db.pg().conn().await.expect("conn");
    assert!(
        c.job_get(old[0]).await.expect("job_get").is_none(),
        "old completed job kept"
    );
    // Deleting jobs deletes their attempt rows, whoever deletes them (a statement-level
    // trigger since version 8; there is no per-row foreign key).
    let orphans: i64 = sqlx::query_scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1")
        .bind(old[0])
        .fetch_one(&pool)
        .await
        .expect("attempts");
    assert_eq!(orphans, 0, "the deleted job's attempts are kept");
    assert_eq!(
        c.job_attempt_list(old[1]).await.expect("attempts").len(),
        1,
        "the kept job's attempt"
    );
    assert!(
        c.job_get(old[1]).await.expect("job_get").is_some(),
        "failed job deleted early"
    );
    for id in [p[0], p[1], p[2], e[0], e[1]] {
        assert!(
            c.job_get(id).await.expect("job_get").is_some(),
            "fresh job {id} deleted"
        );
    }
}

/// Heartbeats and elections use a pool of their own: a worker whose handlers hold every
/// pooled connection still renews its lease.
#[tokio::test]
async fn liveness_does_not_wait_behind_a_busy_pool() {
    let db = harness::postgres().await;
    let mut opts = docket_postgres::PgOptions::new(db.url());
    opts.max_connections = 2;
    opts.listen = false;
    opts.acquire_timeout = StdDuration::from_millis(300);
    let d = docket_postgres::PgDriver::connect(&opts).unwrap();
    let held = (d.conn().await.unwrap(), d.conn().await.unwrap());
    assert!(
        d.conn().await.unwrap_err().is_unavailable(),
        "the pool is exhausted"
    );
    let mut control = tokio::time::timeout(StdDuration::from_secs(5), d.control_conn())
        .await
        .expect("no wait")
        .unwrap();
    control
        .worker_heartbeat(docket_core::WorkerHeartbeatParams {
            id: "busy".into(),
            hostname: "h".into(),
            pid: 1,
            queues: vec![],
            lease: chrono::Duration::seconds(30),
            now: None,
        })
        .await
        .unwrap();
    drop(held);
}
