//! The fast versions of the reliability drills (`docket drill …`), run by the test suite:
//! each runs the real binary and reads its JSON summary.

mod common;

use std::process::Command;

use serde_json::Value;

fn drill(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["drill"])
        .args(args)
        .args(["--database-url", &common::base_url()])
        .env_remove("DOCKET_DATABASE_URL")
        .env("DOCKET_LOG__LEVEL", "warn")
        .output()
        .expect("run docket drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && summary["ok"] == true,
        "the drill lost something: {summary:#}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary
}

/// 200 documents through three worker processes while one is killed every 700 ms: every
/// document completes, nothing is stored or finished twice, every attempt is recorded.
#[test]
fn crash_drill_loses_nothing() {
    let s = drill(&[
        "crash",
        "--documents",
        "200",
        "--workers",
        "3",
        "--kill-every-ms",
        "700",
        "--timeout-secs",
        "240",
    ]);
    assert_eq!(s["completed"], 200, "{s:#}");
    assert!(
        s["kills"].as_u64().unwrap() >= 1,
        "no worker was killed: {s:#}"
    );
}

/// A server and a worker lose every database connection five times over two seconds while
/// documents are uploaded: both stay up and reconnect, uploads refused meanwhile succeed when
/// retried, and nothing is lost. (The PostgreSQL restart variant, `--mode restart`, restarts
/// the shared server, so it runs by hand, not in the suite.)
#[test]
fn outage_drill_loses_nothing() {
    let s = drill(&["outage", "--mode", "terminate", "--documents", "120"]);
    assert_eq!(s["completed"], 120, "{s:#}");
    assert!(s["connections_terminated"].as_i64().unwrap() > 0, "{s:#}");
    assert_eq!(s["server_stayed_up"], true);
    assert_eq!(
        s["readyz_unanswered"], 0,
        "the server stopped answering: {s:#}"
    );
}

/// Two hosts sharing nothing but PostgreSQL and a real S3-compatible server on loopback: 120
/// documents uploaded to either server while workers are killed and one server dies mid-upload.
/// Every document completes, every original reads back whole from the bucket with each host's
/// settings, none lies on a host's disk, and the sweep leaves no orphan.
#[test]
fn hosts_drill_shares_only_the_database_and_the_bucket() {
    use docket_conformance::s3::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = rt.block_on(S3Server::start(&["docket-drill"]));
    let endpoint = s3.endpoint();
    let s = drill(&[
        "hosts",
        "--documents",
        "120",
        "--kill-every-ms",
        "700",
        "--timeout-secs",
        "240",
        "--s3-endpoint",
        &endpoint,
        "--s3-bucket",
        "docket-drill",
        "--s3-access-key-id",
        ACCESS_KEY_ID,
        "--s3-secret-access-key",
        SECRET_ACCESS_KEY,
    ]);
    assert_eq!(s["completed"], 120, "{s:#}");
    assert_eq!(s["originals_checked"], 240, "{s:#}");
    assert_eq!(s["serve_kills"], 1, "{s:#}");
    assert!(s["worker_kills"].as_u64().unwrap() >= 1, "{s:#}");
    assert_eq!(s["orphans_left"], 0, "{s:#}");
    drop(s3);
}

/// The hostile corpus through a real server, twice: every file gets a clear error at parse
/// (or is read despite its damage), empty and oversized uploads are refused with the right
/// status, nothing is parsed twice, and the server stays up.
#[test]
fn hostile_drill_keeps_the_server_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["drill", "hostile", "--rounds", "2"])
        .env_remove("DOCKET_DATABASE_URL")
        .output()
        .expect("run docket drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let s: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON summary ({e}): {stdout}"));
    assert!(out.status.success() && s["ok"] == true, "{s:#}");
    assert_eq!(s["files"]["bomb.docx"]["status"], "failed", "{s:#}");
    assert_eq!(s["refused_at_upload"]["huge.txt"]["status"], 413, "{s:#}");
}

/// The soak drill in twenty seconds: documents at a steady rate, with a transaction held
/// open for the middle ten; every document completes and each sample carries the figures.
fn soak(backend: &str) -> Value {
    let s = drill(&[
        "soak",
        "--backend",
        backend,
        "--minutes",
        "0.34",
        "--rate",
        "20",
        "--hold-from",
        "0.08",
        "--hold-minutes",
        "0.17",
        "--sample-secs",
        "4",
        "--retention-minutes",
        "0",
    ]);
    let documents = s["documents"].as_u64().unwrap();
    assert!(documents >= 100, "{s:#}");
    assert_eq!(s["completed"], s["documents"], "{s:#}");
    let samples = s["samples"].as_array().unwrap();
    assert!(samples.len() >= 3, "{s:#}");
    assert!(
        samples.iter().any(|x| x["transaction_held"] == true)
            && samples.iter().any(|x| x["transaction_held"] == false),
        "{s:#}"
    );
    // parse, chunk, embed and complete, at least, for each document.
    assert!(
        s["jobs_deleted_by_cleanup"].as_u64().unwrap() >= 4 * documents,
        "{s:#}"
    );
    s
}

/// On PostgreSQL, each sample carries every table's figures, and cleanup deletes the job rows.
#[test]
fn soak_drill_on_postgres() {
    let s = soak("postgres");
    assert!(s["database"]["autovacuum"].is_string(), "{s:#}");
    for sample in s["samples"].as_array().unwrap() {
        for t in [
            "processing_jobs",
            "job_attempts",
            "documents",
            "document_chunks",
        ] {
            let f = &sample["tables"][t];
            assert!(
                f["total_mb"].as_f64().unwrap() > 0.0 && f["live_rows"].as_i64().is_some(),
                "{t}: {f}"
            );
        }
    }
}

/// On SQLite, the held read transaction grows the write-ahead log past what checkpoints let
/// it reach otherwise; cleanup empties the job tables and the checkpoint truncates the log.
#[test]
fn soak_drill_on_sqlite() {
    let s = soak("sqlite");
    assert_eq!(
        s["database"]["journal_size_limit"],
        64 * 1024 * 1024,
        "{s:#}"
    );
    let held_wal = s["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["transaction_held"] == true)
        .map(|x| x["tables"]["wal_mb"].as_f64().unwrap())
        .fold(0.0, f64::max);
    // Checkpoints run every 1,000 pages (about 4 MB of log).
    assert!(
        held_wal > 4.2,
        "the log did not grow behind the reader: {s:#}"
    );
    let after = &s["tables_after_cleanup"];
    assert_eq!(after["rows"]["processing_jobs"], 0, "{s:#}");
    assert_eq!(after["rows"]["job_attempts"], 0, "{s:#}");
    assert_eq!(after["wal_mb"], 0.0, "{s:#}");
}
