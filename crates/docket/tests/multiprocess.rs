//! Many `docket worker` processes sharing one PostgreSQL database: the real binary, real
//! signals, a real server.

mod common;

use std::time::Duration;

use common::{Db, wait_until, worker};
use serde_json::json;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

async fn migrate(db: &Db) {
    let st = common::docket()
        .arg("migrate")
        .env("DOCKET_DATABASE_URL", &db.url)
        .status()
        .unwrap();
    assert!(st.success(), "docket migrate failed");
}

/// Inserts `n` noop jobs with `payload`, in batches.
async fn insert_noops(db: &Db, n: usize, payload: serde_json::Value) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let kinds: Vec<&str> = chunk.iter().map(|_| "docket.noop").collect();
        let payloads: Vec<serde_json::Value> = chunk.iter().map(|_| payload.clone()).collect();
        sqlx::query(
            "INSERT INTO processing_jobs (job_type, payload) SELECT * FROM unnest($1::text[], $2::jsonb[])",
        )
        .bind(&kinds)
        .bind(&payloads)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query("SELECT pg_notify('docket_jobs_inserted', '')")
        .execute(&db.pool)
        .await
        .unwrap();
}

/// Completed test jobs (the workers' built-in schedules, such as the stuck-document sweep
/// every minute, add jobs of their own: every count here is of `docket.noop` jobs only).
async fn completed(db: &Db) -> i64 {
    db.scalar("SELECT count(*) FROM processing_jobs WHERE job_type = 'docket.noop' AND status = 'completed'")
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_drain_ten_thousand_jobs_each_completed_once() {
    let db = Db::new().await;
    migrate(&db).await;
    insert_noops(&db, 10_000, json!({})).await;
    let mut procs: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|id| {
            // A loaded 2-core machine can delay a heartbeat past the fast test lease; this
            // test is about sharing work, not rescue.
            let extra = [
                ("DOCKET_WORKER__CONCURRENCY", "20"),
                ("DOCKET_MAINTENANCE__LEASE_MS", "10000"),
            ];
            worker(&db, id, &extra)
        })
        .collect();
    wait_until(
        Duration::from_secs(120),
        "10,000 jobs completed",
        || async { completed(&db).await == 10_000 },
    )
    .await;

    // Exactly one completed attempt per job, and no other attempt at all.
    let outcomes: Vec<(String, i64)> =
        sqlx::query_as("SELECT outcome, count(*) FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts GROUP BY outcome")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(outcomes, vec![("completed".to_owned(), 10_000)]);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM (SELECT job_id FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts WHERE outcome = 'completed' \
             GROUP BY job_id HAVING count(*) = 1) t"
        )
        .await,
        10_000
    );
    // The work was shared.
    let per_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT worker_id, count(*) FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts GROUP BY worker_id ORDER BY worker_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        per_worker.len(),
        3,
        "every worker took jobs: {per_worker:?}"
    );

    for p in &procs {
        p.signal(SIGTERM);
    }
    for p in &mut procs {
        assert!(p.wait_exit(Duration::from_secs(30)).success());
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM docket_workers").await,
        0,
        "workers deregister on exit"
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_has_its_job_rescued_and_completed_elsewhere() {
    let db = Db::new().await;
    migrate(&db).await;
    let mut a = worker(&db, "victim", &[]);
    wait_until(Duration::from_secs(30), "victim registered", || async {
        db.scalar("SELECT count(*) FROM docket_workers WHERE id = 'victim'")
            .await
            == 1
    })
    .await;
    insert_noops(&db, 1, json!({ "sleep_ms": 2500 })).await;
    wait_until(Duration::from_secs(30), "the job runs on the victim", || async {
        db.scalar("SELECT count(*) FROM processing_jobs WHERE job_type = 'docket.noop' AND status = 'running' AND locked_by = 'victim'")
            .await
            == 1
    })
    .await;
    a.signal(SIGKILL);
    a.wait_exit(Duration::from_secs(10));

    let _b = worker(&db, "rescuer", &[]);
    wait_until(
        Duration::from_secs(60),
        "the job completes on the other worker",
        || async { completed(&db).await == 1 },
    )
    .await;
    let attempts: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT attempt, worker_id, outcome FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts ORDER BY attempt, id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        attempts,
        vec![
            (1, "victim".to_owned(), "rescued".to_owned()),
            (2, "rescuer".to_owned(), "completed".to_owned())
        ]
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_another_worker_takes_over() {
    let db = Db::new().await;
    migrate(&db).await;
    let mut procs = [worker(&db, "n1", &[]), worker(&db, "n2", &[])];
    let leader = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT leader_id FROM docket_leader WHERE expires_at > now()",
        )
        .fetch_optional(&db.pool)
        .await
        .unwrap()
    };
    wait_until(Duration::from_secs(30), "a leader is elected", || async {
        leader().await.is_some()
    })
    .await;
    let first = leader().await.unwrap();
    let idx = if first == "n1" { 0 } else { 1 };
    procs[idx].signal(SIGKILL);
    procs[idx].wait_exit(Duration::from_secs(10));
    let other = if idx == 0 { "n2" } else { "n1" };
    wait_until(Duration::from_secs(15), "the survivor leads", || async {
        leader().await.as_deref() == Some(other)
    })
    .await;
    // The new leader runs maintenance: the dead leader's worker row goes once a job of it is
    // rescued; here, prove the survivor's rescuer works by leaving a dead worker's job behind.
    sqlx::query(
        "INSERT INTO processing_jobs (job_type, status, attempts, locked_by, locked_at, started_at) \
         VALUES ('docket.noop', 'running', 1, 'ghost', now(), now())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the ghost's job is rescued and run",
        || async { completed(&db).await == 1 },
    )
    .await;
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_are_restored_and_no_job_is_lost() {
    let db = Db::new().await;
    migrate(&db).await;
    insert_noops(&db, 3_000, json!({ "sleep_ms": 5 })).await;
    let _w = [
        worker(&db, "c1", &[("DOCKET_WORKER__CONCURRENCY", "10")]),
        worker(&db, "c2", &[("DOCKET_WORKER__CONCURRENCY", "10")]),
    ];
    wait_until(Duration::from_secs(60), "work under way", || async {
        completed(&db).await >= 300
    })
    .await;
    // Cut every connection of the workers, twice, while they work.
    for _ in 0..2 {
        let cut = db
            .scalar(&format!(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{}' AND pid <> pg_backend_pid()) t",
                db.app
            ))
            .await;
        assert!(cut > 0, "no worker connection was found to cut");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_until(
        Duration::from_secs(120),
        "all 3,000 jobs completed",
        || async { completed(&db).await == 3_000 },
    )
    .await;
    // Nothing lost, nothing finished twice: one completed attempt per job.
    assert_eq!(
        db.scalar("SELECT count(*) FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts WHERE outcome = 'completed'")
            .await,
        3_000
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_short_jobs_finish_and_releases_long_ones() {
    let db = Db::new().await;
    migrate(&db).await;
    let mut w = worker(&db, "t1", &[("DOCKET_WORKER__SHUTDOWN_GRACE_SECS", "1")]);
    wait_until(Duration::from_secs(30), "registered", || async {
        db.scalar("SELECT count(*) FROM docket_workers").await == 1
    })
    .await;
    insert_noops(&db, 1, json!({ "sleep_ms": 60_000 })).await;
    insert_noops(&db, 1, json!({ "sleep_ms": 300 })).await;
    wait_until(Duration::from_secs(30), "both running", || async {
        db.scalar("SELECT count(*) FROM processing_jobs WHERE job_type = 'docket.noop' AND status = 'running'")
            .await
            == 2
    })
    .await;
    w.signal(SIGTERM);
    let st = w.wait_exit(Duration::from_secs(15));
    assert!(st.success(), "graceful exit: {st:?}");
    assert_eq!(
        completed(&db).await,
        1,
        "the short job finished within the grace period"
    );
    // The long one is back in the queue at once, its interrupted attempt not counted.
    let (status, attempts): (String, i32) = sqlx::query_as(
        "SELECT status, attempts FROM processing_jobs WHERE job_type = 'docket.noop' AND payload->>'sleep_ms' = '60000'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 0));
    assert_eq!(
        db.scalar("SELECT count(*) FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts WHERE outcome = 'released'")
            .await,
        1
    );
    db.drop().await;
}

/// Runs the CLI against `db` and returns its stdout; panics on a non-zero exit.
fn cli(db: &Db, args: &[&str]) -> String {
    let out = common::docket()
        .args(args)
        .env("DOCKET_DATABASE_URL", &db.url)
        .env("DOCKET_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docket {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_inspect_and_repair_the_queue() {
    let db = Db::new().await;
    migrate(&db).await;
    let _w = worker(&db, "ops", &[]);
    insert_noops(&db, 1, json!({ "fail": "permanent: corrupt" })).await;
    wait_until(
        Duration::from_secs(30),
        "the job is dead-lettered",
        || async {
            db.scalar("SELECT count(*) FROM processing_jobs WHERE job_type = 'docket.noop' AND status = 'failed'")
                .await
                == 1
        },
    )
    .await;

    let failed: serde_json::Value =
        serde_json::from_str(&cli(&db, &["jobs", "failed", "--json"])).unwrap();
    let id = failed[0]["id"].as_i64().unwrap();
    assert_eq!(failed[0]["last_error"], "permanent: corrupt");
    let job: serde_json::Value =
        serde_json::from_str(&cli(&db, &["jobs", "get", &id.to_string(), "--json"])).unwrap();
    assert_eq!(job["attempts"][0]["outcome"], "failed");
    assert_eq!(job["attempts"][0]["worker_id"], "ops");

    // Pause everything, retry the job by hand: it waits until the queues resume.
    assert!(cli(&db, &["queues", "pause", "--all"]).contains("paused *"));
    assert!(cli(&db, &["jobs", "retry", &id.to_string()]).contains("retried 1 job(s)"));
    let audit: serde_json::Value =
        serde_json::from_str(&cli(&db, &["jobs", "audit", "--json"])).unwrap();
    assert_eq!(audit[0]["action"], "retry", "{audit}");
    assert_eq!(audit[0]["job_ids"][0], id);
    assert!(audit[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(audit[1]["action"], "pause");
    // Retrying it again (it is queued now) does nothing, says why and exits 3; run-now does.
    let again = common::docket()
        .args(["jobs", "retry", &id.to_string()])
        .env("DOCKET_DATABASE_URL", &db.url)
        .env("DOCKET_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(why.contains("run-now"), "{why}");
    assert!(cli(&db, &["jobs", "run-now", &id.to_string()]).contains("run now 1 job(s)"));
    let status: serde_json::Value =
        serde_json::from_str(&cli(&db, &["queues", "status", "--json"])).unwrap();
    assert_eq!(status["queues"][0]["name"], "*");
    assert!(status["queues"][0]["paused_at"].is_string());
    // The worker is listed live, with the lease it wrote (FAST: 1500 ms); nothing is stuck.
    let ops = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == "ops")
        .cloned()
        .unwrap_or_else(|| panic!("worker ops listed: {status}"));
    assert_eq!(
        (ops["dead"].clone(), ops["lease_ms"].clone()),
        (json!(false), json!(1500))
    );
    let text = cli(&db, &["queues", "status"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ops ") && l.contains(" live, leader ")),
        "{text}"
    );
    assert!(text.contains("* (every queue)  paused"), "{text}");
    assert!(cli(&db, &["jobs", "stuck"]).contains("no stuck jobs"));
    assert_eq!(cli(&db, &["jobs", "stuck", "--json"]).trim(), "[]");
    assert_eq!(
        db.scalar("SELECT count(*) FROM processing_jobs WHERE job_type = 'docket.noop' AND status = 'queued'")
            .await,
        1
    );
    cli(&db, &["queues", "resume", "--all"]);
    wait_until(
        Duration::from_secs(30),
        "the retried job runs again",
        || async { db.scalar("SELECT count(*) FROM (SELECT a.* FROM job_attempts a JOIN processing_jobs p ON p.id = a.job_id \
             WHERE p.job_type = 'docket.noop') job_attempts").await == 2 },
    )
    .await;

    let stats: serde_json::Value =
        serde_json::from_str(&cli(&db, &["jobs", "stats", "--json"])).unwrap();
    assert_eq!(stats[0]["job_type"], "docket.noop");

    // The leader registered the built-in schedules (job cleanup, stuck-document sweep,
    // analytics, orphan sweep); run the cleanup now.
    wait_until(
        Duration::from_secs(30),
        "the built-in schedules exist",
        || async { db.scalar("SELECT count(*) FROM cron_schedules").await == 4 },
    )
    .await;
    assert!(cli(&db, &["cron", "list"]).contains("docket.cleanup"));
    assert!(cli(&db, &["cron", "run", "docket.cleanup"]).contains("enqueued run"));
    wait_until(
        Duration::from_secs(30),
        "the cleanup run completes",
        || async {
            db.scalar("SELECT count(*) FROM cron_runs WHERE status = 'completed'")
                .await
                == 1
        },
    )
    .await;
    assert!(cli(&db, &["cron", "history"]).contains("completed"));

    // Bad input: a clear message and a non-zero exit, nothing changed.
    let out = common::docket()
        .args(["jobs", "retry"])
        .env("DOCKET_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all"));
    let out = common::docket()
        .args(["serve"])
        .env("DOCKET_MAINTENANCE__CLEANUP_CRON", "61 * * * *")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cleanup_cron"));
    db.drop().await;
}
