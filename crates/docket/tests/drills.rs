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
