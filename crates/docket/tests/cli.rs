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
    for verb in ["retry", "run-now", "discard"] {
        let (code, err) = run(&["jobs", verb]);
        assert_eq!(code, Some(2), "jobs {verb}: {err}");
        assert!(err.contains("--all"), "jobs {verb}: {err}");
    }
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

/// Configuration problems come all at once, each naming where its value came from: the file,
/// the environment variable or the flag (never "(docket.toml)" for a variable).
#[test]
fn configuration_errors_name_their_sources_all_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("docket.toml"),
        "[log]\nformat = \"xml\"\n[worker]\npoll_interval_ms = \"soon\"\n",
    )
    .unwrap();
    let out = docket(dir.path())
        .args(["config", "--set", "fetch.timeout_secs=forever"])
        .env("DOCKET_WORKER__CONCURRENCY", "abc")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = |key: &str| {
        err.lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("nothing about {key}: {err}"))
            .to_owned()
    };
    assert!(
        line("worker.concurrency").contains("environment variable DOCKET_WORKER__CONCURRENCY"),
        "{err}"
    );
    assert!(
        line("fetch.timeout_secs").contains("--set fetch.timeout_secs"),
        "{err}"
    );
    assert!(
        line("worker.poll_interval_ms").contains("docket.toml"),
        "{err}"
    );
    assert!(line("log.format").contains("docket.toml"), "{err}");
    assert!(!line("worker.concurrency").contains("docket.toml"), "{err}");

    // An unknown section, the embedder's keys and checks of values that did parse: each
    // named, each with its source, all at once.
    std::fs::write(
        dir.path().join("docket.toml"),
        "[bogus]\na = 1\n[worker]\nheartbeat_interval_ms = \"often\"\n",
    )
    .unwrap();
    let out = docket(dir.path())
        .args([
            "config",
            "--set",
            "embed.batch_size=x",
            "--set",
            "embed.nope=1",
        ])
        .args(["--set", "maintenance.completed_retention_days=0"])
        .env("DOCKET_WORKER__CONCURRENCY", "0")
        .env("DOCKET_CHROMIUM", "/usr/bin/chromium") // the browser test's, not a setting
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let problems: Vec<&str> = err.lines().filter(|l| l.starts_with("  - ")).collect();
    let one = |key: &str, from: &str| {
        let found: Vec<&&str> = problems.iter().filter(|l| l.contains(key)).collect();
        assert_eq!(found.len(), 1, "{key}: {err}");
        assert!(found[0].contains(from), "{key} from {from}: {err}");
    };
    one("- bogus:", "docket.toml");
    one("worker.heartbeat_interval_ms", "docket.toml");
    one("embed.batch_size", "--set embed.batch_size");
    one("embed.nope", "--set embed.nope");
    one("worker.concurrency", "DOCKET_WORKER__CONCURRENCY");
    one(
        "maintenance.completed_retention_days",
        "--set maintenance.completed_retention_days",
    );
    assert_eq!(problems.len(), 6, "{err}");
    assert!(!err.contains("chromium"), "{err}");
}

/// The default provider's settings, and text keys given digits, from the environment and
/// flags.
#[test]
fn provider_keys_and_digit_strings_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = docket(dir.path())
        .args(["config", "--set", "embed.dimensions=256"])
        .env("DOCKET_NOTIFY__WEBHOOK__SECRET", "2024")
        .output()
        .unwrap();
    let (shown, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(shown.contains("dimensions = 256"), "{shown}");
    assert!(shown.contains("secret = \"****\""), "{shown}");
}

/// A one-shot command with the database down fails at once, in one line that says where and
/// why, with no retry warnings.
#[test]
fn an_unreachable_database_fails_fast_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    // A database file that cannot be opened: its reason once.
    let out = docket(dir.path())
        .args([
            "jobs",
            "list",
            "--database-url",
            "sqlite:///nonexistent-folder/x.db",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err.matches("unable to open database file").count(),
        1,
        "{err}"
    );
    for args in [&["jobs", "list"][..], &["migrate"], &["queues", "status"]] {
        let started = Instant::now();
        let out = docket(dir.path())
            .args(args)
            .args(["--database-url", &url])
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(
            lines[0].starts_with(&format!("docket: cannot reach the database at {url}: ")),
            "{args:?}: {err}"
        );
        assert!(lines[0].contains("refused"), "{args:?}: {err}");
        // It used to retry for 10 s; a refused connection is known at once.
        assert!(took < Duration::from_secs(8), "{args:?} took {took:?}");
    }
}

/// At a terminal the logs are coloured, unless NO_COLOR is set (no-color.org).
#[test]
fn no_colour_with_no_color_even_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_docket");
    // `script` (util-linux) gives the worker a terminal; it logs its start at once and is
    // stopped after a few seconds.
    let run = |no_color: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.current_dir(dir.path())
            .args(["-qec"])
            .arg(format!("timeout -s KILL 5 {bin} worker"))
            .arg("/dev/null")
            .env_remove("NO_COLOR")
            .env("DOCKET_LOG__LEVEL", "info")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DOCKET_")) {
            cmd.env_remove(k);
        }
        cmd.env("DOCKET_LOG__LEVEL", "info")
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("script(1) from util-linux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run(false);
    assert!(coloured.contains("worker started"), "{coloured}");
    assert!(
        coloured.contains('\u{1b}'),
        "no colour at a terminal: {coloured:?}"
    );
    let plain = run(true);
    assert!(plain.contains("worker started"), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "colour despite NO_COLOR: {plain:?}"
    );
}
