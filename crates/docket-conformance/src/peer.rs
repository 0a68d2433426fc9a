//! Python test peers (the SMTP sink, the S3 server): started as a child process that prints
//! `LISTENING <port>` once it accepts connections and exits when its stdin closes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Runs `src/<script>` with `args` under `python3` (or `PYTHON`), and waits up to `within` for
/// its port. Panics, saying what went wrong and `hint`, when it cannot start.
pub(crate) async fn start(
    script: &str,
    args: &[&str],
    within: Duration,
    hint: &str,
) -> (Child, u16) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(script);
    let mut child = match Command::new(&python)
        .arg(&script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot run {python:?} ({e}); {hint}"),
    };
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(within, lines.next_line()).await;
    let port = match first {
        Ok(Ok(Some(line))) if line.starts_with("LISTENING ") => {
            line["LISTENING ".len()..].trim().parse().unwrap()
        }
        other => {
            let _ = child.start_kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut stderr))
                        .await;
            }
            panic!(
                "{} did not start (first line: {other:?}; stderr: {}); {hint}",
                script.display(),
                stderr.trim()
            );
        }
    };
    // What it logs goes to stderr: keep reading it, so that a full pipe never stalls it.
    if let Some(err) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        });
    }
    (child, port)
}
