//! The HTTP client commands (`submit`, `status`, `search`, `reindex`) of the real binary
//! against a real `docket serve` on SQLite, listening on loopback: results, failures and exit
//! codes. The operator commands against a running server are in `operators.rs`.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
mod serve;

use serve::*;

/// A key and the SHA-256 the server is configured with (`printf %s KEY | sha256sum`).
const INGEST_KEY: &str = "test-key-ingest-and-read";
const INGEST_KEY_SHA256: &str = "c3cd58d2fa3845db104e58b291126eec680071c6fde3d45cc3c176b8f3292525";
const READ_KEY: &str = "test-key-read-only";
const READ_KEY_SHA256: &str = "7a5bc428805438f3bfdd797738864ffcf114af70f448cf562bf4b86f36586480";
#[test]
fn submit_wait_then_status_and_search() {
    let s = Server::start("");
    let (md, pdf) = (corpus("guide.md"), corpus("report.pdf"));
    let r = s.cli(&["submit", path(&md), path(&pdf), "--wait", "--json"]);
    assert_eq!(r.code, 0, "{r}\n--- server\n{}", s.log());
    let docs = r.json();
    let docs = docs.as_array().expect("an array of documents");
    assert_eq!(docs.len(), 2, "{r}");
    for (d, name) in docs.iter().zip(["guide.md", "report.pdf"]) {
        assert_eq!(d["status"], "completed", "{r}");
        assert_eq!(d["progress"], 100, "{r}");
        assert_eq!(d["filename"], name, "{r}");
        assert!(d["chunk_count"].as_i64().unwrap() > 0, "{r}");
    }
    let guide = docs[0]["id"].as_str().unwrap();

    let r = s.cli(&["status", guide, "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["status"], "completed");
    assert_eq!(r.json()["id"], guide);

    let r = s.cli(&[
        "search",
        "If the worker does not start, check the log for a migration error",
        "-k",
        "3",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let hits = r.json();
    assert_eq!(hits["hits"][0]["chunk"]["document_id"], guide, "{r}");
    assert!(hits["hits"].as_array().unwrap().len() <= 3);

    // The same bytes again, with --wait: already completed, so the wait ends at once.
    let r = s.cli(&["submit", path(&md), "--wait", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()[0]["id"], guide);
}

#[test]
fn a_corrupt_file_fails_with_its_reason_and_exit_code_1() {
    let s = Server::start("");
    let pdf = std::fs::read(corpus("report.pdf")).unwrap();
    let broken = s.dir.path().join("broken.pdf");
    std::fs::write(&broken, &pdf[..200]).unwrap();
    let r = s.cli(&["submit", path(&broken), "--wait"]);
    assert_eq!(r.code, 1, "{r}");
    let line = r.stdout.lines().next().unwrap_or_default();
    assert!(
        line.contains("failed") && line.contains("broken.pdf"),
        "{r}"
    );
    let reason = line.split("error: ").nth(1).unwrap_or_default();
    assert!(reason.len() > 10, "an unclear reason: {r}");
    assert!(r.stderr.contains("1 of 1 documents failed"), "{r}");

    // The same with --json: the failed document, its error, exit 1.
    let r = s.cli(&["submit", path(&broken), "--wait", "--json"]);
    assert_eq!(r.code, 1, "{r}");
    assert_eq!(r.json()[0]["status"], "failed");
    assert!(r.json()[0]["error"].as_str().unwrap().len() > 10, "{r}");
}

#[test]
fn not_found_unreachable_and_usage_errors() {
    let s = Server::start("");
    let id = uuid::Uuid::new_v4().to_string();
    let r = s.cli(&["status", &id]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("not found"), "{r}");

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let r = run(s.dir.path(), &["status", &id, "--server", &url]);
    assert_eq!(r.code, 3, "{r}");
    assert!(
        r.stderr
            .contains(&format!("cannot reach the docket server at {url}")),
        "{r}"
    );

    // Usage: a missing file submits nothing; a bad k; a bad id.
    let r = s.cli(&["submit", "no-such-file.pdf"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("no-such-file.pdf"), "{r}");
    assert_eq!(s.cli(&["search", "x", "-k", "0"]).code, 2);
    assert_eq!(s.cli(&["status", "not-a-uuid"]).code, 2);
}

#[test]
fn api_keys_are_sent_and_a_refused_key_exits_4() {
    let s = Server::start(&format!(
        "[[http.keys]]\nname = \"ingest\"\nsha256 = \"{INGEST_KEY_SHA256}\"\n\
         scopes = [\"ingest\", \"read\"]\n\n\
         [[http.keys]]\nname = \"reader\"\nsha256 = \"{READ_KEY_SHA256}\"\nscopes = [\"read\"]\n"
    ));
    let notes = corpus("notes.txt");
    let r = s.cli(&["submit", path(&notes)]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("API key"), "{r}");
    let r = s.cli(&["submit", path(&notes), "--api-key", "wrong"]);
    assert_eq!(r.code, 4, "{r}");
    // A valid key without the ingest scope.
    let r = s.cli(&["submit", path(&notes), "--api-key", READ_KEY]);
    assert_eq!(r.code, 4, "{r}");
    assert!(r.stderr.contains("scope"), "{r}");

    let r = s.cli(&["submit", path(&notes), "--api-key", INGEST_KEY, "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    let r = s.cli(&["status", &id, "--api-key", READ_KEY, "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(s.cli(&["status", &id]).code, 4);
}

#[test]
fn human_output() {
    let s = Server::start("");
    let notes = corpus("notes.txt");
    let r = s.cli(&["submit", path(&notes)]);
    assert_eq!(r.code, 0, "{r}");
    let line = r.stdout.lines().next().unwrap_or_default();
    let id = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "no id first: {r}");
    assert!(line.contains("notes.txt"), "{r}");

    // Not a terminal: no bars, one line per finished document.
    let r = s.cli(&["submit", path(&notes), "--wait"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains(&id) && r.stdout.contains("completed"),
        "{r}"
    );

    let r = s.cli(&["status", &id]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("completed (100%"), "{r}");
    assert!(r.stdout.contains("notes.txt"), "{r}");

    let r = s.cli(&["search", "the team agreed to ship the ingestion service"]);
    assert_eq!(r.code, 0, "{r}");
    let mut lines = r.stdout.lines();
    assert!(lines.next().unwrap_or_default().starts_with("RANK"), "{r}");
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with('1') && first.contains("notes.txt"), "{r}");
    assert!(first.chars().count() <= 4 + 2 + 6 + 2 + 36 + 2 + 100, "{r}");
}
#[test]
fn help_says_which_commands_use_http_and_which_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["--help"]);
    assert_eq!(r.code, 0, "{r}");
    for cmd in ["submit", "status", "search"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap_or_else(|| panic!("{cmd} missing: {r}"));
        assert!(line.contains("over HTTP"), "{line}");
    }
    for cmd in ["jobs", "queues", "cron", "alerts"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(cmd))
            .unwrap();
        assert!(line.contains("database directly"), "{line}");
    }
    let r = run(dir.path(), &["submit", "--help"]);
    assert!(
        r.stdout.contains("Exit codes:") && r.stdout.contains("--server"),
        "{r}"
    );
}

/// Serves `body` for any path, on loopback, for as long as the test runs; the address.
fn origin(body: &'static [u8]) -> String {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // Read the request head, then answer and close.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/markdown\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn submit_a_url() {
    const PAGE: &[u8] =
        b"# Harbour log\n\nThe ferry to the outer islands leaves at dawn on Tuesdays.\n";
    let origin = origin(PAGE);
    let url = format!("{origin}/harbour.md");
    // This server may fetch from loopback: the SSRF guard is relaxed by its explicit setting.
    let s = Server::start("[fetch]\nallow_private = true\n");
    let r = s.cli(&["submit", &url, "--wait", "--json"]);
    assert_eq!(r.code, 0, "{r}\n--- server\n{}", s.log());
    let doc = &r.json()[0];
    assert_eq!(doc["status"], "completed", "{r}");
    assert_eq!(doc["source"], "url", "{r}");
    assert_eq!(doc["filename"], "harbour.md", "{r}");
    let r = s.cli(&["search", "ferry outer islands dawn", "--json"]);
    assert_eq!(
        r.json()["hits"][0]["chunk"]["document_id"],
        doc["id"],
        "{r}"
    );

    // The default guard refuses loopback: a clear error and exit 1, nothing stored.
    let guarded = Server::start("");
    let r = guarded.cli(&["submit", &url]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains("refused"), "{r}");
}

/// The embedder changes between two runs on one database: `docket status` and `docket search`
/// say how many documents search cannot rank and why, `docket reindex --wait` moves them, and
/// with `embed.reembed_on_change` (the default) a start does it by itself.
#[test]
fn a_changed_embedder_is_reported_and_reindexed() {
    let s = Server::start("");
    let r = s.cli(&["submit", path(&corpus("guide.md")), "--wait", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let id = r.json()[0]["id"].as_str().unwrap().to_owned();
    let r = s.cli(&["status", &id]);
    assert!(r.stdout.contains("embedder:  hashing:384 (hashing-"), "{r}");
    let dir = s.stop();

    // Another input limit is another embedder; no re-embedding at start.
    let s = Server::start_in(
        dir,
        "[embed]\nmax_tokens = 100\nreembed_on_change = false\n",
    );
    let r = s.cli(&["status"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("0 searchable with it, 1 not"),
        "{r}\n--- server\n{}",
        s.log()
    );
    assert!(r.stdout.contains("docket reindex"), "{r}");
    assert!(
        s.log().contains("embed.reembed_on_change is off"),
        "{}",
        s.log()
    );
    let r = s.cli(&["search", "installation", "--mode", "vector", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    assert_eq!(r.json()["hits"], serde_json::json!([]), "{r}");
    let r = s.cli(&["search", "installation", "--mode", "vector"]);
    assert!(
        r.stderr.contains("1 document(s) not searched") && r.stdout.contains("no matches"),
        "{r}"
    );
    // By words (hybrid, the default) the document is still found, by its file name.
    let r = s.cli(&["search", "installation"]);
    assert!(
        r.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("guide.md")),
        "{r}"
    );
    let r = s.cli(&["reindex", "--wait"]);
    assert_eq!(r.code, 0, "{r}\n--- server\n{}", s.log());
    assert!(
        r.stdout
            .starts_with("re-embedding 1 document(s): started job "),
        "{r}"
    );
    assert!(r.stdout.contains("1 current, 0 left"), "{r}");
    let r = s.cli(&["search", "installation", "--mode", "vector", "--json"]);
    assert_eq!(
        r.json()["hits"][0]["chunk"]["document_id"],
        id.as_str(),
        "{r}"
    );
    let dir = s.stop();

    // Yet another; this time the start re-embeds by itself.
    let s = Server::start_in(dir, "[embed]\nmax_tokens = 90\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.cli(&["status", "--json"]);
        assert_eq!(r.code, 0, "{r}");
        let e = &r.json()["embedder"];
        if e["stale_documents"] == 0 && e["current_documents"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not re-embedded: {r}\n--- server\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        s.log()
            .contains("re-embedding them with the running embedder"),
        "{}",
        s.log()
    );
}

/// The byte offset of `header`'s column in a table's header line.
fn column(table: &str, header: &str) -> usize {
    let first = table.lines().next().unwrap_or_default();
    first
        .find(header)
        .unwrap_or_else(|| panic!("no {header} column:\n{table}"))
}

/// `submit --wait` names each document before following it; Ctrl-C ends the wait with 130
/// and says how to follow the documents, which go on processing on the server.
#[test]
fn submit_wait_names_its_documents_and_says_how_to_follow_them_after_ctrl_c() {
    let s = Server::start("");
    // Nothing moves while the queue is paused: the wait cannot end by itself.
    assert_eq!(admin(&s, &["queues", "pause", "default"]).code, 0);
    let notes = corpus("notes.txt");
    let mut child = common::Proc(
        docket(s.dir.path())
            .args(["submit", "--wait", path(&notes), "--server", &s.url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("submit --wait says what it submitted");
    let id = first
        .strip_prefix("docket: submitted ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("not an id line: {first:?}"))
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{first:?}");
    assert!(first.ends_with("notes.txt"), "{first:?}");
    std::thread::sleep(Duration::from_millis(300)); // following now
    child.signal(2); // SIGINT, as Ctrl-C sends
    let status = child.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    let rest: Vec<String> = rx.try_iter().collect();
    let rest = rest.join("\n");
    assert!(rest.contains("goes on processing"), "{rest}");
    assert!(rest.contains("notes.txt"), "{rest}");
    assert!(rest.contains(&format!("docket status {id}")), "{rest}");
    // The document is still there, waiting for its queue.
    let r = s.cli(&["status", &id]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("queued"), "{r}");
}

/// The operator tables: headers, columns that stay aligned whatever their contents, and the
/// times and workers an operator needs.
#[test]
fn operator_tables_carry_times_and_workers_aligned_under_headers() {
    let s = Server::start("");
    assert_eq!(admin(&s, &["queues", "pause", "default"]).code, 0);
    let r = s.cli(&["submit", path(&corpus("notes.txt"))]);
    assert_eq!(r.code, 0, "{r}");

    let r = admin(&s, &["jobs", "list"]);
    assert_eq!(r.code, 0, "{r}");
    let table = &r.stdout;
    let (kind, queue, state, created, next, worker) = (
        column(table, "KIND"),
        column(table, "QUEUE"),
        column(table, "STATE"),
        column(table, "CREATED"),
        column(table, "WHEN"),
        column(table, "WORKER"),
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(!rows.is_empty(), "{r}");
    let mut parse = None;
    for row in &rows {
        // Each cell starts under its header, however long the kinds are
        // (`docket.sweep_documents` is longer than any fixed width used before).
        for at in [kind, queue, state, created, next, worker] {
            let before = row.as_bytes().get(at.wrapping_sub(1)).copied();
            let here = row.as_bytes().get(at).copied();
            assert!(
                before == Some(b' ') && here.is_some_and(|c| c != b' '),
                "a cell out of line at {at}:\n{table}"
            );
        }
        if row[kind..].starts_with("docket.parse") {
            parse = Some(*row);
        }
    }
    let parse = parse.unwrap_or_else(|| panic!("no parse job:\n{table}"));
    assert!(parse[state..].starts_with("queued"), "{parse}");
    assert!(parse[next..].starts_with("due "), "{parse}");
    assert!(parse[created..].contains("ago") || parse[created..].starts_with("now"));
    let id = parse.split_whitespace().next().unwrap();

    let r = admin(&s, &["jobs", "get", id]);
    assert_eq!(r.code, 0, "{r}");
    for field in ["created ", "due ", "started ", "payload "] {
        assert!(
            r.stdout.lines().any(|l| l.starts_with(field)),
            "{field}: {r}"
        );
    }
    assert!(r.stdout.contains("UTC"), "{r}");

    let r = admin(&s, &["queues", "status"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.starts_with("QUEUE"), "{r}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("default") && l.contains("paused")),
        "{r}"
    );
    assert!(r.stdout.contains("LAST HEARTBEAT"), "{r}");

    // The leader registers the built-in schedules on its first pass.
    let deadline = Instant::now() + Duration::from_secs(60);
    while admin(&s, &["cron", "run", "docket.sweep_documents"]).code != 0 {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = admin(&s, &["cron", "history"]);
    assert_eq!(r.code, 0, "{r}");
    let unknown = admin(&s, &["cron", "history", "no-such-schedule"]);
    assert_eq!(unknown.code, 1, "{unknown}");
    assert!(
        unknown.stderr.contains("no cron schedule named"),
        "{unknown}"
    );
    let zero = admin(&s, &["jobs", "list", "--limit", "0"]);
    assert_eq!(zero.code, 2, "{zero}");
    let header = r.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("SCHEDULE") && header.contains("STATUS"),
        "{r}"
    );
}
