//! Operator commands (`cron`, `alerts`, `queues`) against the database of a real running
//! `docket serve`, and `serve --no-workers` beside a `docket worker` process.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
mod serve;

use serve::*;

/// `docket cron run NAME` exits 3, enqueuing nothing, while a run of the schedule is live:
/// here the first run of the built-in cleanup waits in a paused queue.
#[test]
fn cron_run_exits_3_while_a_run_is_live() {
    let s = Server::start("");
    let database = format!("sqlite://{}", s.dir.path().join("docket.db").display());
    let admin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &database]);
        run(s.dir.path(), &all)
    };
    // The server's maintenance leader registers the built-in schedules on its first pass.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = admin(&["cron", "list", "--json"]);
        assert_eq!(r.code, 0, "{r}");
        if r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "docket.cleanup")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "docket.cleanup was never registered; the server's log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = admin(&["queues", "pause", "default"]);
    assert_eq!(r.code, 0, "{r}");

    let r = admin(&["cron", "run", "docket.cleanup"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.starts_with("enqueued run "), "{r}");
    let r = admin(&["cron", "run", "docket.cleanup"]);
    assert_eq!(r.code, 3, "{r}");
    assert!(r.stdout.contains("already live"), "{r}");
    let r = admin(&["cron", "history", "docket.cleanup", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r}");

    let r = admin(&["cron", "run", "no-such-schedule"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("no cron schedule named"), "{r}");
}

/// The serving process, leading maintenance, evaluates the built-in rules: a paused queue
/// fires `queue_paused` (threshold 0 here); `docket alerts` lists it, silences it (audited)
/// and ends the silence, exiting 3 for one no longer in force.
#[test]
fn the_leader_fires_an_alert_that_docket_alerts_lists_and_silences() {
    let s =
        Server::start("[alerts]\ninterval_secs = 1\n[alerts.rules.queue_paused]\nthreshold = 0\n");
    let database = format!("sqlite://{}", s.dir.path().join("docket.db").display());
    let admin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &database]);
        run(s.dir.path(), &all)
    };
    let r = admin(&["queues", "pause", "bulk"]);
    assert_eq!(r.code, 0, "{r}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        let r = admin(&["alerts", "list", "--json"]);
        assert_eq!(r.code, 0, "{r}");
        let v = r.json();
        if let Some(a) = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == "queue_paused" && a["state"] == "firing")
        {
            break a.clone();
        }
        assert!(
            Instant::now() < deadline,
            "queue_paused never fired; the server's log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(alert["subject"], "queue=bulk");
    // The leader registered the hourly analytics schedule beside the others.
    let r = admin(&["cron", "list", "--json"]);
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "docket.analytics" && s["expression"] == "5 * * * *"),
        "{r}"
    );
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("queue bulk is paused"),
        "{alert}"
    );

    let r = admin(&["alerts", "list"]);
    assert!(
        r.stdout.starts_with("ID") && r.stdout.contains("queue_paused"),
        "{r}"
    );
    let r = admin(&[
        "alerts",
        "silence",
        "queue_paused",
        "--subject",
        "queue=bulk",
        "--for",
        "2h",
        "--reason",
        "migration",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .starts_with("silenced queue_paused (queue=bulk) until "),
        "{r}"
    );
    let r = admin(&["alerts", "silence", "queue_pasued", "--for", "2h"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no rule named"), "{r}");
    let r = admin(&["alerts", "list"]);
    assert!(
        r.stdout.contains("firing (silenced)") && r.stdout.contains("migration"),
        "{r}"
    );
    let r = admin(&["jobs", "audit", "--action", "silence", "--json"]);
    assert_eq!(r.json()[0]["target"], "queue_paused", "{r}");
    let id = admin(&["alerts", "list", "--json"]).json()["silences"][0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    assert_eq!(admin(&["alerts", "unsilence", &id]).code, 0);
    assert_eq!(admin(&["alerts", "unsilence", &id]).code, 3);

    // Resumed, the alert resolves and joins the history.
    assert_eq!(admin(&["queues", "resume", "bulk"]).code, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = admin(&["alerts", "history", "--rule", "queue_paused", "--json"]);
        if r.json()["alerts"][0]["state"] == "resolved" {
            break;
        }
        assert!(Instant::now() < deadline, "never resolved: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `serve --no-workers` serves the API and the dashboard and works nothing: an upload waits,
/// no worker row appears, `POST /v1/jobs/process` says why; a `docket worker` on the same
/// database then does the work, and the server answers with the finished document.
#[test]
fn serve_without_workers_leaves_the_work_to_a_worker_process() {
    let s = Server::start("[worker]\nenabled = false\n");
    let database = format!("sqlite://{}", s.dir.path().join("docket.db").display());
    let admin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &database]);
        run(s.dir.path(), &all)
    };
    let notes = corpus("notes.txt");
    let r = s.cli(&["submit", path(&notes), "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(500));
    let r = s.cli(&["status", &id, "--json"]);
    assert_eq!(r.json()["status"], "queued", "nothing works it: {r}");
    let r = admin(&["queues", "status", "--json"]);
    assert_eq!(
        r.json()["workers"],
        serde_json::json!([]),
        "no worker row: {r}"
    );
    let (status, body) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/jobs/process", s.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("runs no workers"), "{body}");
    let r = run(s.dir.path(), &["worker", "--no-workers"]);
    assert_eq!(r.code, 2, "the flag is for serve: {r}");

    // Reading the same docket.toml, a worker refuses to start, saying why.
    let r = admin(&["worker"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("worker.enabled is false"), "{r}");

    // A worker process on the same database does the work.
    let mut worker = docket(s.dir.path())
        .arg("worker")
        .env("DOCKET_WORKER__ENABLED", "true")
        .env("DOCKET_DATABASE_URL", &database)
        .env("DOCKET_EMBED__PROVIDER", "hashing")
        .env("DOCKET_STORAGE__BLOB_DIR", s.dir.path().join("blobs"))
        .env("DOCKET_WORKER__POLL_INTERVAL_MS", "100")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It says where its /metrics and health checks are.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(worker.stdout.take().unwrap()));
    let worker_url = loop {
        let line = lines
            .next()
            .expect("the worker said where it listens")
            .unwrap();
        if let Some(url) = line.strip_prefix("docket worker is listening on ") {
            break url.trim().to_owned();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.cli(&["status", &id, "--json"]);
        if r.json()["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "never completed: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let get = |url: String| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(get(format!("{worker_url}/healthz")).0, 200);
    let (status, ready) = get(format!("{worker_url}/readyz"));
    assert_eq!(status, 200, "{ready}");
    // The worker's own series (its stage attempts), and, as the process leading maintenance,
    // the database's gauges; the server, which never leads, leaves those out, so that a sum
    // across processes counts each job once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let worker_metrics = loop {
        let (status, text) = get(format!("{worker_url}/metrics"));
        assert_eq!(status, 200, "{text}");
        if text.contains("docket_jobs{") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        worker_metrics
            .contains("docket_job_attempts_total{job_type=\"docket.parse\",outcome=\"completed\"}")
            && worker_metrics.contains("docket_stage_duration_seconds_bucket{")
            && worker_metrics.contains("docket_jobs{")
            && worker_metrics.contains("docket_queue_depth{"),
        "{worker_metrics}"
    );
    let (status, served) = get(format!("{}/metrics", s.url));
    assert_eq!(status, 200, "{served}");
    assert!(
        !served.contains("docket_jobs{") && !served.contains("docket_queue_depth{"),
        "{served}"
    );
    assert!(served.contains("docket_database_up 1"), "{served}");
    let _ = worker.kill();
    let _ = worker.wait();
    let r = s.cli(&[
        "search",
        "the team agreed to ship the ingestion service",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(&id),
        "the server searches what the worker made: {r}"
    );
}

/// A worker whose `http.listen` is taken (another docket process on the host) stops at start,
/// naming the address and the setting that fixes it, before it claims any job.
#[test]
fn a_worker_whose_address_is_taken_stops_saying_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = docket(dir.path())
        .arg("worker")
        .env("DOCKET_HTTP__LISTEN", &addr)
        .env("DOCKET_EMBED__PROVIDER", "hashing")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&addr) && err.contains("DOCKET_HTTP__LISTEN"),
        "{err}"
    );
    let r = run(dir.path(), &["queues", "status", "--json"]);
    assert_eq!(r.json()["workers"], serde_json::json!([]), "{r}");
}
