//! `docket drill hosts`: two "hosts" that share nothing but PostgreSQL and an S3-compatible
//! bucket. Each host is a folder of its own with a `docket serve` and a `docket worker`;
//! documents are uploaded to either server, a few at a time, while a random worker is killed
//! (SIGKILL) every few seconds and started again, and one server is killed once in the middle
//! of the uploads (an upload it was storing may leave its original behind: the orphan the sweep
//! is for). It passes when every document completes, the invariants hold, every original is
//! read back whole from the bucket with each host's settings, no original lies on a host's
//! disk, and after the sweep no original is left that no document references.

use std::path::{Path, PathBuf};

use docket_core::{DocumentListParams, DocumentStore};
use docket_pipeline::blob::{BlobStore, ObjectStoreBlobs, original_document};
use docket_pipeline::config::{S3Config, StorageConfig};
use futures::StreamExt;

use super::*;

/// `docket drill hosts` flags.
#[derive(Debug, Args)]
pub struct HostsDrill {
    /// Documents to upload (alternately to each host's server).
    #[arg(long, default_value_t = 1_000)]
    documents: usize,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Milliseconds between worker kills.
    #[arg(long, default_value_t = 3_000)]
    kill_every_ms: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout_secs: u64,
    /// Random seed (documents and victims).
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// The S3 API's base URL (a MinIO or moto server, say). Passed to every process
    /// explicitly, with the keys below: nothing looks anywhere else for credentials.
    #[arg(long)]
    s3_endpoint: String,
    /// The bucket (it must exist); the drill works under a prefix of its own, and deletes
    /// what it wrote when it ends.
    #[arg(long)]
    s3_bucket: String,
    /// The bucket's region.
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// The access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    s3_access_key_id: String,
    /// The secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: String,
}

/// One host: its folder, its server's port, and its processes.
struct Host {
    dir: tempfile::TempDir,
    port: u16,
    serve: tokio::process::Child,
    worker: tokio::process::Child,
    started_workers: usize,
}

/// The drill's settings of a child process's storage.
fn storage_env(h: &HostsDrill, prefix: &str) -> Vec<(String, String)> {
    [
        (
            "DOCKET_STORAGE__URL",
            format!("s3://{}/{prefix}", h.s3_bucket),
        ),
        ("DOCKET_STORAGE__S3__ENDPOINT", h.s3_endpoint.clone()),
        ("DOCKET_STORAGE__S3__REGION", h.s3_region.clone()),
        (
            "DOCKET_STORAGE__S3__ACCESS_KEY_ID",
            h.s3_access_key_id.clone(),
        ),
        (
            "DOCKET_STORAGE__S3__SECRET_ACCESS_KEY",
            h.s3_secret_access_key.clone(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn spawn(
    exe: &Path,
    url: &str,
    dir: &Path,
    storage: &[(String, String)],
    role: &str,
    port: u16,
    log: &str,
) -> anyhow::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(exe);
    child_env(&mut cmd, url, dir);
    let listen = if role == "serve" {
        format!("127.0.0.1:{port}")
    } else {
        "127.0.0.1:0".to_owned()
    };
    cmd.arg(role)
        .envs(storage.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("DOCKET_HTTP__LISTEN", listen)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log))?);
    Ok(cmd.spawn()?)
}

/// A free loopback port (the server is started again on the same one after its kill).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_ready(http: &reqwest::Client, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if matches!(&r, Ok(r) if r.status().is_success()) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server on port {port} was not ready within 60 s: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Files under `dir` whose path has a `documents` folder: an original kept on a host's disk.
fn originals_on_disk(dir: &Path) -> usize {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, found);
            } else if p.components().any(|c| c.as_os_str() == "documents") {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.len()
}

pub(super) async fn hosts(mut config: Config, h: HostsDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.database_url.starts_with("postgres"),
        "the hosts drill shares PostgreSQL between its hosts: pass --database-url postgres://…"
    );
    anyhow::ensure!(h.concurrency >= 1, "--concurrency must be at least 1");
    let started = Instant::now();
    config.embed.provider = docket_embed::EmbedConfig::Hashing(Default::default());
    let fresh = Fresh::new(&config, BackendKind::Postgres).await?;
    let Backend::Postgres(driver) = fresh.backend.clone() else {
        anyhow::bail!("expected PostgreSQL");
    };
    let prefix = format!(
        "docket-drill-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let storage = storage_env(&h, &prefix);
    let exe = std::env::current_exe()?;
    let url = fresh.url().to_owned();
    let http = reqwest::Client::builder().no_proxy().build()?;

    let mut hosts = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let serve = spawn(
            &exe,
            &url,
            dir.path(),
            &storage,
            "serve",
            port,
            "serve-1.log",
        )?;
        let worker = spawn(
            &exe,
            &url,
            dir.path(),
            &storage,
            "worker",
            0,
            "worker-1.log",
        )?;
        hosts.push(Host {
            dir,
            port,
            serve,
            worker,
            started_workers: 1,
        });
    }
    for host in &hosts {
        wait_ready(&http, host.port).await?;
    }

    // The uploads, a few in flight, alternately to each host's server.
    let mut rng = StdRng::seed_from_u64(h.seed);
    let docs: Vec<_> = (0..h.documents).map(|i| document(i, &mut rng)).collect();
    let ports: Vec<u16> = hosts.iter().map(|x| x.port).collect();
    let uploaded = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let uploads = {
        let http = http.clone();
        let concurrency = h.concurrency;
        let uploaded = uploaded.clone();
        tokio::spawn(async move {
            let mut retries = 0u32;
            let mut stream =
                futures::stream::iter(docs.into_iter().enumerate().map(|(i, (name, bytes))| {
                    let base = format!("http://127.0.0.1:{}", ports[i % 2]);
                    let http = http.clone();
                    async move { upload_retrying(&http, &base, name, bytes).await }
                }))
                .buffer_unordered(concurrency);
            while let Some(r) = stream.next().await {
                retries += r?;
                uploaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(retries)
        })
    };

    let deadline = started + Duration::from_secs(h.timeout_secs);
    let mut kills = 0usize;
    let mut serve_kills = 0usize;
    let mut next_kill = Instant::now() + Duration::from_millis(h.kill_every_ms);
    let mut uploads = Some(uploads);
    let mut upload_retries = 0;
    let (done, failed) = loop {
        let (done, failed) = counts(&driver).await?;
        if uploads.as_ref().is_some_and(|u| u.is_finished()) {
            upload_retries = uploads.take().expect("checked").await??;
        }
        if uploads.is_none() && done + failed >= h.documents as i64 {
            break (done, failed);
        }
        if Instant::now() > deadline {
            break (done, failed);
        }
        // Once, with about half the documents in: the second host's server dies (SIGKILL) in
        // the middle of its uploads, and comes back on the same port.
        if serve_kills == 0
            && uploaded.load(std::sync::atomic::Ordering::Relaxed) >= h.documents / 2
            && uploads.is_some()
        {
            let host = &mut hosts[1];
            host.serve.kill().await?;
            serve_kills += 1;
            host.serve = spawn(
                &exe,
                &url,
                host.dir.path(),
                &storage,
                "serve",
                host.port,
                "serve-2.log",
            )?;
        }
        if Instant::now() >= next_kill {
            let host = &mut hosts[rng.random_range(0..2)];
            // SIGKILL: no shutdown, no released jobs, no final completions.
            host.worker.kill().await?;
            kills += 1;
            host.started_workers += 1;
            let log = format!("worker-{}.log", host.started_workers);
            host.worker = spawn(&exe, &url, host.dir.path(), &storage, "worker", 0, &log)?;
            next_kill = Instant::now() + Duration::from_millis(h.kill_every_ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    if let Some(u) = uploads.take() {
        u.abort();
    }
    for host in &mut hosts {
        let _ = host.serve.kill().await;
        let _ = host.worker.kill().await;
    }

    let (lost, checks) = verify(&driver, h.documents as i64, done).await?;

    // Every original, read back whole with each host's settings.
    let host_stores: Vec<ObjectStoreBlobs> = hosts
        .iter()
        .map(|_| {
            ObjectStoreBlobs::open_with_env(
                &StorageConfig {
                    url: Some(format!("s3://{}/{prefix}", h.s3_bucket)),
                    s3: S3Config {
                        endpoint: Some(h.s3_endpoint.clone()),
                        region: Some(h.s3_region.clone()),
                        access_key_id: Some(h.s3_access_key_id.clone()),
                        secret_access_key: Some(h.s3_secret_access_key.clone()),
                        ..S3Config::default()
                    },
                    ..StorageConfig::default()
                },
                |_| None,
            )
        })
        .collect::<Result<_, _>>()?;
    let mut documents = Vec::new();
    let mut before = None;
    loop {
        let page = driver
            .conn()
            .await?
            .document_list(&DocumentListParams {
                status: None,
                source: None,
                before,
                limit: 500,
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        documents.extend(page);
    }
    let mut originals_unreadable = 0usize;
    for store in &host_stores {
        let reads = futures::stream::iter(documents.iter().map(|d| async move {
            match store.get(&d.storage_key).await {
                Ok(bytes) => docket_pipeline::sha256_hex(&bytes) == d.sha256,
                Err(_) => false,
            }
        }))
        .buffer_unordered(8)
        .collect::<Vec<bool>>()
        .await;
        originals_unreadable += reads.iter().filter(|ok| !**ok).count();
    }
    let on_disk: usize = hosts.iter().map(|x| originals_on_disk(x.dir.path())).sum();

    // The sweep, as the leader runs it, with no grace (nothing is uploading now); then what
    // is left in the bucket that no document references.
    let store = &host_stores[0];
    let swept =
        docket_pipeline::orphans::sweep_once(&driver, store, Duration::ZERO, chrono::Utc::now())
            .await?;
    let known: std::collections::HashSet<uuid::Uuid> = documents.iter().map(|d| d.id).collect();
    let left: Vec<String> = store
        .list("documents")
        .filter_map(|m| async move { m.ok() })
        .map(|m| m.key)
        .collect()
        .await;
    let orphans_left = left
        .iter()
        .filter(|k| original_document(k).is_none_or(|id| !known.contains(&id)))
        .count();

    // What the drill wrote to the bucket goes.
    for key in &left {
        let _ = store.delete(key).await;
    }

    let ok = lost == 0
        && failed == 0
        && originals_unreadable == 0
        && on_disk == 0
        && orphans_left == 0
        && documents.len() == h.documents;
    let mut summary = json!({
        "drill": "hosts",
        "ok": ok,
        "documents": h.documents,
        "completed": done,
        "failed": failed,
        "hosts": hosts.len(),
        "worker_kills": kills,
        "serve_kills": serve_kills,
        "upload_retries": upload_retries,
        "originals_checked": documents.len() * host_stores.len(),
        "originals_unreadable": originals_unreadable,
        "originals_on_host_disks": on_disk,
        "orphans_swept": swept.deleted,
        "orphans_left": orphans_left,
        "elapsed_seconds": elapsed.as_secs_f64(),
        "documents_per_second": done as f64 / elapsed.as_secs_f64().max(0.001),
    });
    merge(&mut summary, checks);
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    if !ok {
        for host in &hosts {
            print_log_tails(host.dir.path(), 4);
        }
    }
    fresh.drop_schema().await;
    Ok(super::exit_code(ok))
}
