//! Running [`parse`](crate::parse) in a child process bounded in time, memory and output.
//!
//! The parent ([`parse_isolated`]) starts [`Isolation::program`], streams the document to
//! its stdin and passes the format, limits and bounds in `DOCKET_PARSE_*` environment
//! variables. The child ([`child_main`]) lowers its own address-space and CPU-time limits,
//! parses, and writes a marker line followed by the JSON `Result<Parsed, ParseError>` to
//! stdout.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Format, Limits, ParseError, Parsed, SizeLimit};

const ENV_FORMAT: &str = "DOCKET_PARSE_FORMAT";
const ENV_LIMITS: &str = "DOCKET_PARSE_LIMITS";
const ENV_MEMORY: &str = "DOCKET_PARSE_MEMORY_BYTES";
const ENV_CPU: &str = "DOCKET_PARSE_CPU_SECS";
/// Environment passed through to the child; everything else (credentials included) is not.
const ENV_KEEP: &[&str] = &[
    "PATH",
    "LD_LIBRARY_PATH",
    "TMPDIR",
    "LANG",
    "RUST_BACKTRACE",
];
/// Precedes the JSON result on the child's stdout, so stray prints by a library cannot be
/// mistaken for it.
const MARKER: &[u8] = b"\n\x1edocket-parse-result\x1e\n";
/// Stderr kept for error messages.
const STDERR_KEEP: u64 = 64 * 1024;

/// How to run the isolated parser.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The executable to start; it must call [`child_main`] (for example the
    /// `docket-parse-child` binary, or `docket` with its hidden parse-child subcommand).
    pub program: PathBuf,
    /// Arguments for `program`.
    pub args: Vec<OsString>,
    /// Wall-clock limit; the child is killed when it runs longer.
    pub timeout: Duration,
    /// Address-space limit of the child in bytes (`RLIMIT_AS`); 0 for none.
    pub memory_bytes: u64,
}

/// Parses `bytes` as `format` in a child process (see [`Isolation`]).
///
/// Besides the errors of [`parse`](crate::parse), this returns [`ParseError::Timeout`] when
/// the child runs past `iso.timeout` (it is killed), [`ParseError::MemoryLimit`] when it
/// fails to allocate within `iso.memory_bytes`, [`ParseError::Crashed`] when it dies
/// otherwise, and [`ParseError::Unavailable`] when it cannot be started at all. The calling
/// process is never affected by what the document does to the parser.
pub async fn parse_isolated(
    iso: &Isolation,
    bytes: Vec<u8>,
    format: Format,
    limits: &Limits,
) -> Result<Parsed, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(ParseError::TooLarge {
            limit: SizeLimit::Input,
            max_bytes: limits.max_input_bytes,
        });
    }
    let limits_json = serde_json::to_string(limits).unwrap_or_default();
    let cpu_secs = iso.timeout.as_secs().saturating_add(2);
    let mut cmd = tokio::process::Command::new(&iso.program);
    cmd.args(&iso.args)
        .env_clear()
        .envs(
            ENV_KEEP
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
        )
        .env(ENV_FORMAT, format.name())
        .env(ENV_LIMITS, limits_json)
        .env(ENV_MEMORY, iso.memory_bytes.to_string())
        .env(ENV_CPU, cpu_secs.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        ParseError::Unavailable(format!(
            "cannot start the parser process {}: {e}",
            iso.program.display()
        ))
    })?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ParseError::Unavailable(
            "parser process has no pipes".into(),
        ));
    };

    let out_cap = limits
        .max_text_bytes
        .saturating_mul(2)
        .saturating_add(4 << 20);
    let write_in = async move {
        // The child may exit early (e.g. killed); a broken pipe is reported through its status.
        let _ = stdin.write_all(&bytes).await;
        let _ = stdin.shutdown().await;
    };
    let read_out = async move {
        let mut buf = Vec::new();
        let mut limited = stdout.take(out_cap.saturating_add(1));
        let _ = limited.read_to_end(&mut buf).await;
        buf
    };
    let read_err = async move {
        let mut buf = Vec::new();
        let mut stderr = stderr;
        let _ = (&mut stderr).take(STDERR_KEEP).read_to_end(&mut buf).await;
        // Keep draining so a chatty child never blocks on a full pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        buf
    };

    let run = async {
        let (_, out, err, status) = tokio::join!(write_in, read_out, read_err, child.wait());
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(iso.timeout, run).await {
        Ok(done) => done,
        Err(_) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(ParseError::Timeout {
                secs: iso.timeout.as_secs_f64(),
            });
        }
    };
    let status =
        status.map_err(|e| ParseError::Crashed(format!("lost the parser process: {e}")))?;
    let stderr_text = String::from_utf8_lossy(&err);
    tracing::debug!(%status, stderr = %stderr_text.trim(), "parser process finished");

    if out.len() as u64 > out_cap {
        return Err(ParseError::TooLarge {
            limit: SizeLimit::Text,
            max_bytes: limits.max_text_bytes,
        });
    }
    if status.success()
        && let Some(pos) = rfind(&out, MARKER)
    {
        return match serde_json::from_slice::<Result<Parsed, ParseError>>(
            &out[pos + MARKER.len()..],
        ) {
            Ok(result) => result,
            Err(e) => Err(ParseError::Crashed(format!(
                "the parser process returned an unreadable result ({e})"
            ))),
        };
    }
    Err(classify_failure(iso, &status, &stderr_text))
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Signals that end a process which ran out of CPU time (soft then hard `RLIMIT_CPU`).
const SIGXCPU: i32 = 24;

fn classify_failure(
    iso: &Isolation,
    status: &std::process::ExitStatus,
    stderr: &str,
) -> ParseError {
    let signal = exit_signal(status);
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        return ParseError::MemoryLimit {
            bytes: iso.memory_bytes,
        };
    }
    if stderr.contains("has overflowed its stack") {
        return ParseError::Crashed(
            "the document is nested too deeply (the parser overflowed its stack)".into(),
        );
    }
    if signal == Some(SIGXCPU) {
        return ParseError::Timeout {
            secs: iso.timeout.as_secs_f64(),
        };
    }
    let last_line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    match signal {
        Some(sig) => ParseError::Crashed(format!(
            "the parser process was killed by signal {sig}{last_line}"
        )),
        None => ParseError::Crashed(format!(
            "the parser process exited with status {}{last_line}",
            status.code().unwrap_or(-1)
        )),
    }
}

#[cfg(unix)]
fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn exit_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// The child side of [`parse_isolated`]: call it from `main` of the program named in
/// [`Isolation::program`] and return its exit code.
///
/// It limits its own address space and CPU time, reads the document from stdin, parses it
/// and writes the result to stdout. It exits with status 0 whenever it produced a result,
/// including a [`ParseError`]; status 2 means it was started wrongly.
pub fn child_main() -> ExitCode {
    match child_run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("docket-parse child: {msg}");
            ExitCode::from(2)
        }
    }
}

fn child_run() -> Result<(), String> {
    let format: Format = std::env::var(ENV_FORMAT)
        .map_err(|_| format!("{ENV_FORMAT} is not set (this program is started by docket)"))?
        .parse()
        .map_err(|e| format!("{ENV_FORMAT}: {e}"))?;
    let limits: Limits = match std::env::var(ENV_LIMITS) {
        Ok(s) => serde_json::from_str(&s).map_err(|e| format!("{ENV_LIMITS}: {e}"))?,
        Err(_) => Limits::default(),
    };
    let number = |name: &str| -> Result<u64, String> {
        match std::env::var(name) {
            Ok(s) => s.trim().parse().map_err(|e| format!("{name}: {e}")),
            Err(_) => Ok(0),
        }
    };
    let memory = number(ENV_MEMORY)?;
    let cpu = number(ENV_CPU)?;
    apply_limits(memory, cpu)?;

    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(limits.max_input_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let result = if bytes.len() as u64 > limits.max_input_bytes {
        Err(ParseError::TooLarge {
            limit: SizeLimit::Input,
            max_bytes: limits.max_input_bytes,
        })
    } else {
        crate::parse(&bytes, format, &limits)
    };
    drop(bytes);

    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    w.write_all(MARKER)
        .and_then(|()| serde_json::to_writer(&mut w, &result).map_err(std::io::Error::from))
        .and_then(|()| w.flush())
        .map_err(|e| format!("writing stdout: {e}"))
}

#[cfg(unix)]
fn apply_limits(memory: u64, cpu_secs: u64) -> Result<(), String> {
    use rlimit::Resource;
    let lower = |res: Resource, soft: u64, hard: u64| -> Result<(), String> {
        let (_, cur_hard) = rlimit::getrlimit(res).map_err(|e| format!("getrlimit: {e}"))?;
        let hard = hard.min(cur_hard);
        rlimit::setrlimit(res, soft.min(hard), hard).map_err(|e| format!("setrlimit {res:?}: {e}"))
    };
    if memory > 0 {
        lower(Resource::AS, memory, memory)?;
    }
    if cpu_secs > 0 {
        lower(Resource::CPU, cpu_secs, cpu_secs.saturating_add(1))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn apply_limits(_memory: u64, _cpu_secs: u64) -> Result<(), String> {
    Ok(())
}
