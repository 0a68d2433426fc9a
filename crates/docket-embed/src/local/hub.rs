//! Downloads a model's files from a Hugging Face hub (or a mirror) into the cache folder.
//!
//! Every file streams into `{name}.part` beside the place it belongs. A download that breaks
//! off keeps what arrived, and the next attempt asks only for the rest (`Range: bytes=N-`),
//! appending when the server answers `206` and starting over when it answers `200`. When the
//! hub names a file's SHA-256 (it does for large, LFS-stored files such as
//! `model.safetensors`: `X-Linked-Etag`, or an `ETag` of 64 hex digits), the bytes are checked
//! against it; a mismatch deletes the download. A file is renamed into place only once it is
//! complete and checked, so the cache never holds a partial file under its real name. A
//! `{name}.lock` file keeps two processes from writing one `.part` at once.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, HeaderMap, LOCATION, RANGE};
use sha2::{Digest, Sha256};

use super::{DEFAULT_HUB_URL, LocalConfig};
use crate::EmbedError;

/// Files the model needs.
pub(crate) const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// Files used when the repository has them.
pub(crate) const OPTIONAL: [&str; 2] = ["sentence_bert_config.json", "1_Pooling/config.json"];

/// Bytes gathered in memory before they are written to the `.part` file.
const WRITE_BLOCK: usize = 1 << 20;
/// Redirects followed per request (the hub sends large files to a CDN).
const MAX_REDIRECTS: usize = 10;
/// A lock whose holder has written nothing for this long is abandoned.
const STALE_LOCK: Duration = Duration::from_secs(120);

/// Told how a download goes, e.g. to draw a progress bar. Every method does nothing by
/// default; `()` is the progress that shows nothing.
pub trait DownloadProgress: Send {
    /// `file` starts downloading: `resumed_from` bytes of it were already there from an
    /// interrupted download; `total` is its full size when the server says.
    fn started(&mut self, file: &str, resumed_from: u64, total: Option<u64>) {
        let _ = (file, resumed_from, total);
    }

    /// `bytes` more bytes of the current file arrived.
    fn advanced(&mut self, bytes: u64) {
        let _ = bytes;
    }

    /// The current file is complete (and checked, when the hub named its SHA-256) and in
    /// place.
    fn finished(&mut self, file: &Downloaded) {
        let _ = file;
    }
}

impl DownloadProgress for () {}

/// One file a pull downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Its path inside the model folder, e.g. `model.safetensors`.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Bytes an earlier, interrupted download had left, which this one resumed from (0 when
    /// it started from the beginning).
    pub resumed_from: u64,
    /// The SHA-256 the hub named for it, which the downloaded bytes matched; `None` when the
    /// hub named none (small files kept in git, whose `ETag` is not a SHA-256).
    pub sha256: Option<String>,
}

/// What [`pull`](super::pull) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The folder holding the model's files.
    pub dir: PathBuf,
    /// The files downloaded now; files already in the cache are not fetched again.
    pub downloaded: Vec<Downloaded>,
}

/// The cache folder when none is configured.
pub(crate) fn default_cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(hf) = env("HF_HOME") {
        return hf.join("docket");
    }
    let base = env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("docket").join("models")
}

/// The hub's base URL, without a trailing slash: `HF_ENDPOINT` when `hub_url` is left at its
/// default.
pub(crate) fn hub_url(config: &LocalConfig) -> String {
    let url = if config.hub_url == DEFAULT_HUB_URL {
        std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| config.hub_url.clone())
    } else {
        config.hub_url.clone()
    };
    url.trim_end_matches('/').to_string()
}

fn revision(config: &LocalConfig) -> Result<&str, EmbedError> {
    let revision = if config.revision.is_empty() {
        "main"
    } else {
        &config.revision
    };
    if revision.contains(['/', '\\']) || revision.starts_with('.') {
        return Err(EmbedError::Permanent(format!(
            "invalid revision `{revision}`"
        )));
    }
    Ok(revision)
}

/// The folder a hub model's files are cached in:
/// `{cache_dir}/{model with / replaced by --}/{revision}`.
pub(crate) fn model_dir(config: &LocalConfig) -> Result<PathBuf, EmbedError> {
    let cache = config.cache_dir.clone().unwrap_or_else(default_cache_dir);
    Ok(cache
        .join(config.model.replace('/', "--"))
        .join(revision(config)?))
}

/// Whether `dir` holds every file the model needs.
pub(crate) fn complete(dir: &Path) -> bool {
    REQUIRED.iter().all(|f| dir.join(f).is_file())
}

/// Makes sure the model's required files are in the cache and returns their folder; when
/// they are all there already, nothing is requested. Progress goes to the log.
pub(crate) async fn ensure(config: &LocalConfig) -> Result<PathBuf, EmbedError> {
    let dir = model_dir(config)?;
    if complete(&dir) {
        return Ok(dir);
    }
    tracing::info!(model = %config.model, revision = %revision(config)?, hub = %hub_url(config), dir = %dir.display(), "downloading embedding model");
    Ok(fetch(config, &mut LogProgress).await?.dir)
}

/// Progress as log lines, for a model downloaded while it loads.
struct LogProgress;

impl DownloadProgress for LogProgress {
    fn started(&mut self, file: &str, resumed_from: u64, total: Option<u64>) {
        tracing::info!(file, resumed_from, total, "downloading");
    }

    fn finished(&mut self, file: &Downloaded) {
        tracing::info!(file = %file.file, bytes = file.bytes, sha256 = file.sha256.as_deref().unwrap_or("(not named by the hub)"), "downloaded");
    }
}

/// Downloads every file of the model that is not in the cache yet (the optional ones too,
/// where the repository has them).
pub(crate) async fn fetch(
    config: &LocalConfig,
    progress: &mut dyn DownloadProgress,
) -> Result<Pulled, EmbedError> {
    let dir = model_dir(config)?;
    let revision = revision(config)?;
    let base = hub_url(config);
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        // Followed by hand: the checksum headers are on the hub's answer, not the CDN's.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| EmbedError::Transient(format!("http client: {e}")))?;
    let mut downloaded = Vec::new();
    for file in REQUIRED.iter().chain(OPTIONAL.iter()) {
        let target = dir.join(file);
        if target.is_file() {
            continue;
        }
        let url = format!("{base}/{}/resolve/{revision}/{file}", config.model);
        match download(&client, &url, file, &target, progress).await? {
            Outcome::Done(d) => {
                progress.finished(&d);
                downloaded.push(d);
            }
            Outcome::Present => {}
            Outcome::Missing(_) if OPTIONAL.contains(file) => {}
            Outcome::Missing(status) => {
                return Err(EmbedError::Permanent(format!(
                    "GET {url}: {status} (no such model, revision or file on {base})"
                )));
            }
        }
    }
    Ok(Pulled { dir, downloaded })
}

enum Outcome {
    /// Downloaded now.
    Done(Downloaded),
    /// Another process downloaded it meanwhile.
    Present,
    /// The hub does not have it.
    Missing(StatusCode),
}

fn transient(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Transient(e.to_string())
}

/// `target` with `suffix` added to its file name.
fn beside(target: &Path, suffix: &str) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    target.with_file_name(name)
}

/// Runs a blocking file operation off the async workers.
async fn blocking<T: Send + 'static>(
    what: String,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, EmbedError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| transient(format!("{what}: {e}")))?
        .map_err(|e| transient(format!("{what}: {e}")))
}

/// Downloads `url` to `target` through `{target}.part`, resuming what an earlier attempt left.
async fn download(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    target: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<Outcome, EmbedError> {
    let parent = target
        .parent()
        .ok_or_else(|| transient(format!("{} has no parent folder", target.display())))?
        .to_path_buf();
    std::fs::create_dir_all(&parent)
        .map_err(|e| transient(format!("creating {}: {e}", parent.display())))?;
    let part = beside(target, ".part");
    let _lock = Lock::acquire(&beside(target, ".lock"), &part, name).await?;
    if target.is_file() {
        return Ok(Outcome::Present);
    }
    let mut started_over = false;
    loop {
        let have = std::fs::metadata(&part).map_or(0, |m| m.len());
        let (mut resp, hints) = get(client, url, have).await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::UNAUTHORIZED {
            return Ok(Outcome::Missing(status));
        }
        let partial = status == StatusCode::PARTIAL_CONTENT;
        let resumed_from = if partial && content_range_start(resp.headers()) == Some(have) {
            have
        } else if (partial || status == StatusCode::RANGE_NOT_SATISFIABLE) && !started_over {
            // A range the server cannot serve (the `.part` is as long as the file, or longer),
            // or a part other than the one asked for: start over, once.
            started_over = true;
            let _ = std::fs::remove_file(&part);
            continue;
        } else if status.is_success() && !partial {
            // The whole file (a server that ignores ranges): start over.
            0
        } else {
            return Err(transient(format!("GET {url}: {status}")));
        };
        let total = hints
            .size
            .or_else(|| content_range_total(resp.headers()))
            .or_else(|| resp.content_length().map(|n| n + resumed_from));
        progress.started(name, resumed_from, total);

        // The checksum covers the whole file: first what an earlier attempt left.
        let mut hasher = Sha256::new();
        let file = if resumed_from > 0 {
            let p = part.clone();
            let (file, h) = blocking(format!("reading {}", part.display()), move || {
                let mut h = Sha256::new();
                std::io::copy(&mut std::fs::File::open(&p)?, &mut h)?;
                let file = std::fs::OpenOptions::new().append(true).open(&p)?;
                Ok((file, h))
            })
            .await?;
            hasher = h;
            file
        } else {
            let p = part.clone();
            blocking(format!("creating {}", part.display()), move || {
                std::fs::File::create(&p)
            })
            .await?
        };
        let mut writer = PartWriter {
            file: Some(file),
            buf: Vec::with_capacity(WRITE_BLOCK),
            path: part.clone(),
        };
        let mut received = resumed_from;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    hasher.update(&bytes);
                    writer.buf.extend_from_slice(&bytes);
                    received += bytes.len() as u64;
                    progress.advanced(bytes.len() as u64);
                    if writer.buf.len() >= WRITE_BLOCK {
                        writer.flush(false).await?;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived: the next attempt resumes after it.
                    writer.flush(true).await?;
                    let of = total.map_or(String::new(), |t| format!(" of {t}"));
                    return Err(transient(format!(
                        "downloading {name} from {url}: the transfer broke off after {received}{of} \
                         bytes ({e}); what arrived is kept in {}: run the same command again to \
                         resume",
                        part.display()
                    )));
                }
            }
        }
        writer.flush(true).await?;
        if let Some(t) = total.filter(|&t| t != received) {
            if received < t {
                return Err(transient(format!(
                    "downloading {name} from {url}: the server ended the transfer after \
                     {received} of {t} bytes; what arrived is kept in {}: run the same command \
                     again to resume",
                    part.display()
                )));
            }
            let _ = std::fs::remove_file(&part);
            return Err(transient(format!(
                "downloading {name} from {url}: got {received} bytes where the server announced \
                 {t}; the download was deleted: run the same command again"
            )));
        }
        let got: String = hex(&hasher.finalize());
        if let Some(want) = &hints.sha256
            && *want != got
        {
            let _ = std::fs::remove_file(&part);
            return Err(transient(format!(
                "downloading {name} from {url}: checksum mismatch: the hub names SHA-256 {want}, \
                 the downloaded bytes have SHA-256 {got}. The download was deleted and nothing \
                 was put in place; run the same command again to fetch it anew (if this repeats, \
                 the hub, a mirror or a proxy on the way is serving altered files)"
            )));
        }
        let (from, to) = (part.clone(), target.to_path_buf());
        blocking(
            format!("moving {} into place", target.display()),
            move || std::fs::rename(from, to),
        )
        .await?;
        return Ok(Outcome::Done(Downloaded {
            file: name.to_owned(),
            bytes: received,
            resumed_from,
            sha256: hints.sha256,
        }));
    }
}

/// Appends to the `.part` file in blocks, off the async workers.
struct PartWriter {
    file: Option<std::fs::File>,
    buf: Vec<u8>,
    path: PathBuf,
}

impl PartWriter {
    /// Writes the buffered bytes; with `sync`, also to the disk.
    async fn flush(&mut self, sync: bool) -> Result<(), EmbedError> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        let buf = std::mem::take(&mut self.buf);
        let (file, mut buf) = blocking(format!("writing {}", self.path.display()), move || {
            file.write_all(&buf)?;
            if sync {
                file.sync_all()?;
            }
            Ok((file, buf))
        })
        .await?;
        buf.clear();
        self.buf = buf;
        self.file = Some(file);
        Ok(())
    }
}

/// What the hub says about a file besides its bytes.
struct Hints {
    /// `X-Linked-Etag`, else `ETag`, when it is a SHA-256 (64 hex digits).
    sha256: Option<String>,
    /// `X-Linked-Size`: the full size of an LFS file.
    size: Option<u64>,
}

/// `GET url` (from byte `from` on when it is not 0), following redirects by hand so that the
/// hub's own headers are seen, and sending the range again at every hop.
async fn get(
    client: &reqwest::Client,
    url: &str,
    from: u64,
) -> Result<(reqwest::Response, Hints), EmbedError> {
    let mut url = reqwest::Url::parse(url)
        .map_err(|e| EmbedError::Permanent(format!("invalid hub URL {url}: {e}")))?;
    let (mut linked, mut etag, mut size) = (None, None, None);
    for _ in 0..=MAX_REDIRECTS {
        let mut rb = client.get(url.clone());
        if from > 0 {
            rb = rb.header(RANGE, format!("bytes={from}-"));
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| transient(format!("GET {url}: {e}")))?;
        let h = resp.headers();
        linked = linked.or_else(|| sha256_header(h, "x-linked-etag"));
        etag = etag.or_else(|| sha256_header(h, ETAG.as_str()));
        size = size.or_else(|| {
            h.get("x-linked-size")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        if resp.status().is_redirection()
            && let Some(location) = h.get(LOCATION).and_then(|v| v.to_str().ok())
        {
            url = resp
                .url()
                .join(location)
                .map_err(|e| transient(format!("GET {url}: bad redirect {location:?}: {e}")))?;
            continue;
        }
        let hints = Hints {
            sha256: linked.or(etag),
            size,
        };
        return Ok((resp, hints));
    }
    Err(transient(format!(
        "GET {url}: more than {MAX_REDIRECTS} redirects"
    )))
}

/// A header holding a SHA-256: 64 hex digits, maybe quoted, maybe weak (`W/"…"`).
fn sha256_header(h: &HeaderMap, name: &str) -> Option<String> {
    let v = h.get(name)?.to_str().ok()?.trim();
    let v = v.strip_prefix("W/").unwrap_or(v).trim_matches('"');
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

/// `N` of `Content-Range: bytes N-M/T`.
fn content_range_start(h: &HeaderMap) -> Option<u64> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split(['-', '/']).next()?.trim().parse().ok()
}

/// `T` of `Content-Range: bytes N-M/T`.
fn content_range_total(h: &HeaderMap) -> Option<u64> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit('/').next()?.trim().parse().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file that exists while this process downloads one model file (removed when dropped).
struct Lock(PathBuf);

impl Lock {
    /// Creates the lock file, waiting while another live process holds it. A lock left by
    /// a process that is gone (same host, where `/proc` tells), or one beside a download
    /// that has not moved for [`STALE_LOCK`], is taken over.
    async fn acquire(path: &Path, part: &Path, name: &str) -> Result<Lock, EmbedError> {
        let mut told = false;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{} {}", std::process::id(), hostname());
                    return Ok(Lock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match std::fs::read_to_string(path) {
                        // Released meanwhile: try again.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Ok(holder) if lock_abandoned(&holder, path, part) => {
                            tracing::info!(lock = %path.display(), %holder, "taking over an abandoned download lock");
                            let _ = std::fs::remove_file(path);
                            continue;
                        }
                        _ => {}
                    }
                    if !told {
                        tracing::info!(file = name, lock = %path.display(), "another process is downloading this file; waiting for it");
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(transient(format!("creating {}: {e}", path.display())));
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// This host's name where the system tells it cheaply (Linux), else empty.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the lock holding `holder` (`"{pid} {host}"`) was left behind.
fn lock_abandoned(holder: &str, lock: &Path, part: &Path) -> bool {
    let mut words = holder.split_whitespace();
    let pid = words.next().and_then(|p| p.parse::<u32>().ok());
    let host = words.next().unwrap_or("");
    let proc = Path::new("/proc");
    if let Some(pid) = pid
        && !host.is_empty()
        && host == hostname()
        && proc.join("self").exists()
    {
        return !proc.join(pid.to_string()).exists();
    }
    let quiet = |p: &Path| {
        p.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
    };
    [quiet(lock), quiet(part)]
        .into_iter()
        .flatten()
        .min()
        .is_some_and(|q| q > STALE_LOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_headers_and_ranges_are_read() {
        let mut h = HeaderMap::new();
        let sha = "53AA51172D142C89D9012CCE15AE4D6CC0CA6895895114379CACB4FAB519B0C4";
        h.insert("x-linked-etag", format!("\"{sha}\"").parse().unwrap());
        h.insert(ETAG, "W/\"2a8c6d0b\"".parse().unwrap());
        h.insert(CONTENT_RANGE, "bytes 100-199/200".parse().unwrap());
        assert_eq!(
            sha256_header(&h, "x-linked-etag"),
            Some(sha.to_ascii_lowercase())
        );
        assert_eq!(sha256_header(&h, "etag"), None, "a git hash is no SHA-256");
        assert_eq!(content_range_start(&h), Some(100));
        assert_eq!(content_range_total(&h), Some(200));
        assert_eq!(
            beside(Path::new("/c/1_Pooling/config.json"), ".part"),
            Path::new("/c/1_Pooling/config.json.part")
        );
    }

    #[test]
    fn a_lock_of_a_live_process_is_kept_and_a_dead_ones_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, part) = (dir.path().join("x.lock"), dir.path().join("x.part"));
        std::fs::write(&lock, "").unwrap();
        let me = format!("{} {}", std::process::id(), hostname());
        assert!(!lock_abandoned(&me, &lock, &part));
        assert!(!lock_abandoned("", &lock, &part), "just created");
        if Path::new("/proc/self").exists() && !hostname().is_empty() {
            // Beyond the largest pid Linux hands out.
            let gone = format!("{} {}", 1u32 << 31, hostname());
            assert!(lock_abandoned(&gone, &lock, &part));
        }
    }
}
