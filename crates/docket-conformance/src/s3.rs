//! A real S3-compatible server on loopback for tests: `s3_server.py`, moto's S3 server
//! (the PyPI package `moto[server]`), holding objects in memory.
//!
//! It needs `python3` (or the interpreter named by the `PYTHON` environment variable) with
//! moto's server installed: `pip install 'moto[server]'` (`scripts/test` installs it). When
//! either is missing, [`S3Server::start`] panics saying so: tests that need it fail, they are
//! not skipped. Tests give docket the explicit endpoint and credentials of [`S3Server::env`],
//! so the client never looks anywhere else for them.

use std::time::Duration;

use tokio::process::Child;

const INSTALL_HINT: &str = "the object-storage tests need Python 3 with moto's S3 server: \
    install Python 3 and run `pip install 'moto[server]'` \
    (set PYTHON to choose the interpreter)";

/// The access key id the server is given (it accepts any).
pub const ACCESS_KEY_ID: &str = "docket-test";
/// The secret access key the server is given.
pub const SECRET_ACCESS_KEY: &str = "docket-test-secret";

/// A running `s3_server.py`; stopped when dropped.
pub struct S3Server {
    port: u16,
    _child: Child,
}

impl S3Server {
    /// Starts a server on a free loopback port, with these buckets (names of 3 to 63
    /// lowercase letters, digits and hyphens).
    pub async fn start(buckets: &[&str]) -> S3Server {
        let (child, port) = crate::peer::start(
            "s3_server.py",
            buckets,
            Duration::from_secs(60),
            INSTALL_HINT,
        )
        .await;
        S3Server {
            port,
            _child: child,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `DOCKET_STORAGE__*` settings that store originals under `s3://bucket/prefix` on
    /// this server, for a child process's environment.
    pub fn env(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        [
            ("DOCKET_STORAGE__URL", format!("s3://{bucket}/{prefix}")),
            ("DOCKET_STORAGE__S3__ENDPOINT", self.endpoint()),
            ("DOCKET_STORAGE__S3__REGION", "us-east-1".to_owned()),
            (
                "DOCKET_STORAGE__S3__ACCESS_KEY_ID",
                ACCESS_KEY_ID.to_owned(),
            ),
            (
                "DOCKET_STORAGE__S3__SECRET_ACCESS_KEY",
                SECRET_ACCESS_KEY.to_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
