//! A real SMTP server on loopback for tests: `smtp_sink.py`, built on Python's aiosmtpd,
//! storing each message it receives as a file.
//!
//! It needs `python3` (or the interpreter named by the `PYTHON` environment variable) with
//! aiosmtpd installed: `pip install aiosmtpd` (`scripts/test` installs it). When either is
//! missing, [`Sink::start`] panics saying so: tests that need it fail, they are not skipped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Child;

const INSTALL_HINT: &str = "the email tests need Python 3 with aiosmtpd: \
    install Python 3 and run `pip install aiosmtpd` \
    (set PYTHON to choose the interpreter)";

/// A running `smtp_sink.py`; killed when dropped.
pub struct Sink {
    port: u16,
    dir: tempfile::TempDir,
    _child: Child,
}

impl Sink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .to_str()
            .expect("a UTF-8 temporary path")
            .to_owned();
        let (child, port) = crate::peer::start(
            "smtp_sink.py",
            &[&path],
            Duration::from_secs(30),
            INSTALL_HINT,
        )
        .await;
        Sink {
            port,
            dir,
            _child: child,
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The stored messages, in arrival order: (decoded record, raw bytes).
    pub fn messages(&self) -> Vec<(serde_json::Value, String)> {
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
                Some((name.parse().ok()?, path))
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .map(|(_, path)| {
                let record = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                let raw = std::fs::read_to_string(path.with_extension("eml")).unwrap();
                (record, raw)
            })
            .collect()
    }

    /// Waits (briefly) until `n` messages are stored.
    pub async fn wait_for(&self, n: usize) -> Vec<(serde_json::Value, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
