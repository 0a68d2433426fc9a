//! A real `docket serve` on SQLite, listening on loopback, and the binary's commands run
//! against it, for the tests of the client and operator commands.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docket-parse/tests/corpus")
        .join(name)
}

/// The binary, with no `DOCKET_*` setting inherited from the test's environment.
pub fn docket(dir: &Path) -> Command {
    crate::common::docket_in(dir)
}

/// A `docket serve` process, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a server in a fresh folder; `config` is written to `docket.toml` there.
    pub fn start(config: &str) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), config)
    }

    /// Starts a server in `dir` (its database, blobs and log are there).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Server {
        std::fs::write(dir.path().join("docket.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut child = docket(dir.path())
            .args(["--config", "docket.toml", "serve"])
            .env(
                "DOCKET_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("docket.db").display()),
            )
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .env("DOCKET_EMBED__PROVIDER", "hashing")
            .env("DOCKET_STORAGE__BLOB_DIR", dir.path().join("blobs"))
            .env("DOCKET_WORKER__POLL_INTERVAL_MS", "100")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("docket is listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            dir,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => server.url = url,
            Err(_) => panic!(
                "docket serve did not start; its log:\n{}",
                std::fs::read_to_string(server.dir.path().join("serve.log")).unwrap_or_default()
            ),
        }
        assert!(
            server.url.starts_with("http://127.0.0.1:"),
            "{}",
            server.url
        );
        server
    }

    /// Runs a client command against this server.
    pub fn cli(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--server", &self.url]);
        run(self.dir.path(), &all)
    }

    /// Stops the server (as a crash would); its folder stays for the next one.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary in `dir`, killing it after two minutes.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let mut child = docket(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docket {args:?} ran for more than two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The server's database, for the operator commands (which open it directly).
pub fn admin(s: &Server, args: &[&str]) -> Run {
    let database = format!("sqlite://{}", s.dir.path().join("docket.db").display());
    let mut all = args.to_vec();
    all.extend(["--database-url", &database]);
    run(s.dir.path(), &all)
}
