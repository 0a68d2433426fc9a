//! The command line as a script sees it, through the built binary: a reader that goes away,
//! usage errors, and logs written to a pipe.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::docket_in as docket;

/// `docket … | head` where `head` has already gone: the write finds the pipe closed. The
/// command ends quietly with status 0, where `println!` panicked with status 101.
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["config"][..],
        &["jobs", "list", "--json"],
        &["jobs", "stats"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before the command writes a byte
        let out = docket(dir.path())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

/// Usage errors exit 2 and say what is wrong, before touching any database.
#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = docket(dir.path()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["jobs", "list", "--state", "bogus"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("one of queued, running, retrying, completed, failed, cancelled"),
        "{err}"
    );
    let (code, err) = run(&["queues", "pause"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("<QUEUE>"), "{err}");
    let (code, err) = run(&["queues", "resume", "default", "--all"]);
    assert_eq!(code, Some(2), "{err}");
    for (args, says) in [
        (
            &["search", "x", "--metadata", "[1]"][..],
            "expected a JSON object",
        ),
        (&["search", "x", "--metadata", "{"][..], "not JSON"),
        (&["search", "x", "--mode", "fuzzy"][..], "hybrid"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("docket.db").exists(),
        "a usage error opened the database"
    );
}

/// Logs written to a pipe or a file carry no colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = docket(dir.path())
        .arg("worker")
        .env("DOCKET_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    let mut line = String::new();
    while !seen.contains("worker started") {
        assert!(Instant::now() < deadline, "no start line: {seen}");
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(seen.contains("worker started"), "{seen}{rest}");
    assert!(!seen.contains('\u{1b}'), "colour codes in a pipe: {seen:?}");
}
