//! `docket drill outage`: cut the database away from a running server and worker.

use super::*;

/// How the database goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutageMode {
    /// `pg_terminate_backend` on every connection of the drill's processes, five times over
    /// two seconds (only theirs: they carry an application name of their own).
    Terminate,
    /// Stop the PostgreSQL server, keep it down `--down-secs` while uploads go on, start it.
    Restart,
}

/// `docket drill outage` flags.
#[derive(Debug, Args)]
pub struct OutageDrill {
    /// How the database goes away.
    #[arg(long, value_enum, default_value = "terminate")]
    mode: OutageMode,
    /// Documents to push through (half before the outage, half during and after it).
    #[arg(long, default_value_t = 300)]
    documents: usize,
    /// The command that stops and starts PostgreSQL when given `stop` or `start` (mode
    /// `restart`); default: pg_ctlcluster on the newest cluster in /etc/postgresql.
    #[arg(long)]
    pg_ctl: Option<String>,
    /// How long PostgreSQL stays down (mode `restart`), while uploads go on.
    #[arg(long, default_value_t = 3)]
    down_secs: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

pub(super) async fn outage(mut config: Config, o: OutageDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.database_url.starts_with("postgres"),
        "the outage drill needs PostgreSQL: pass --database-url postgres://…"
    );
    let started = Instant::now();
    let blob_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    let fresh = Fresh::new(&config, BackendKind::Postgres).await?;
    let Backend::Postgres(driver) = fresh.backend.clone() else {
        anyhow::bail!("expected PostgreSQL");
    };
    let app = format!(
        "docket_drill_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let url = format!("{}&application_name={app}", fresh.url());
    let exe = std::env::current_exe()?;

    // The server (API, workers, maintenance) and one more worker.
    let mut server = {
        let mut cmd = tokio::process::Command::new(&exe);
        child_env(&mut cmd, &url, blob_dir.path());
        cmd.arg("serve")
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.spawn()?
    };
    let mut worker = {
        let mut cmd = tokio::process::Command::new(&exe);
        child_env(&mut cmd, &url, blob_dir.path());
        cmd.arg("worker")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.spawn()?
    };
    let base = super::listening_url(&mut server).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;

    let mut rng = StdRng::seed_from_u64(11);
    let docs: Vec<_> = (0..o.documents).map(|i| document(i, &mut rng)).collect();
    let half = o.documents / 2;
    let mut upload_retries = 0;
    for (name, bytes) in &docs[..half] {
        upload_retries += upload_retrying(&http, &base, name.clone(), bytes.clone()).await?;
    }

    // /readyz, every 20 ms (a restart can leave the database down for well under a second), from now to the end.
    let seen: Arc<std::sync::Mutex<Vec<(f64, u16)>>> = Arc::default();
    let probe = {
        let (http, base, seen) = (http.clone(), base.clone(), seen.clone());
        tokio::spawn(async move {
            let t0 = Instant::now();
            loop {
                let status = match http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0, // the server did not answer at all
                };
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((t0.elapsed().as_secs_f64(), status));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The outage.
    let outage_started = Instant::now();
    let mut terminated = 0i64;
    match o.mode {
        OutageMode::Terminate => {
            // The drill's own pool goes by another name: only the children's connections go.
            for _ in 0..5 {
                terminated += driver.terminate_connections(&app).await?;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
        OutageMode::Restart => {
            let pg_ctl = match &o.pg_ctl {
                Some(c) => c.clone(),
                None => {
                    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")?
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
                    let v = versions
                        .pop()
                        .ok_or_else(|| anyhow::anyhow!("no cluster in /etc/postgresql"))?;
                    format!("pg_ctlcluster --skip-systemctl-redirect {v} main")
                }
            };
            let run = |action: &'static str| {
                let command = format!("{pg_ctl} {action}");
                async move {
                    let st = tokio::process::Command::new("sh")
                        .args(["-c", &command])
                        .status()
                        .await?;
                    anyhow::ensure!(st.success(), "{command}: {st}");
                    Ok::<_, anyhow::Error>(())
                }
            };
            run("stop").await?;
            // The second half is uploaded while the database is down: refused with 503,
            // retried by the client until it is back.
            let uploads = {
                let (http, base) = (http.clone(), base.clone());
                let rest: Vec<_> = docs[half..].to_vec();
                tokio::spawn(async move {
                    let mut retries = 0;
                    for (name, bytes) in rest {
                        retries += upload_retrying(&http, &base, name, bytes).await?;
                    }
                    Ok::<_, anyhow::Error>(retries)
                })
            };
            tokio::time::sleep(Duration::from_secs(o.down_secs)).await;
            run("start").await?;
            upload_retries += uploads.await??;
        }
    }
    let outage_secs = outage_started.elapsed().as_secs_f64();

    // The rest, during the recovery (mode `restart` uploaded them during the outage).
    if o.mode == OutageMode::Terminate {
        for (name, bytes) in &docs[half..] {
            upload_retries += upload_retrying(&http, &base, name.clone(), bytes.clone()).await?;
        }
    }
    let deadline = started + Duration::from_secs(o.timeout_secs);
    let mut last = (0, 0);
    let (done, failed) = loop {
        if let Ok(c) = counts(&driver).await {
            last = c;
        }
        if last.0 + last.1 >= o.documents as i64 || Instant::now() > deadline {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    probe.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));
    let server_alive = server.try_wait()?.is_none();
    let worker_alive = worker.try_wait()?.is_none();
    let _ = server.kill().await;
    let _ = worker.kill().await;

    let (lost, checks) = verify(&driver, o.documents as i64, done).await?;
    let unready: Vec<f64> = seen
        .iter()
        .filter(|(_, s)| *s == 503)
        .map(|(t, _)| *t)
        .collect();
    // The longest stretch without an answer from /readyz (a probe that hung).
    let longest_probe_gap = seen
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .fold(0.0f64, f64::max);
    let unanswered = seen.iter().filter(|(_, s)| *s == 0).count();
    let ready_at_end = seen.last().is_some_and(|(_, s)| *s == 200);
    let saw_outage = o.mode != OutageMode::Restart || !unready.is_empty();
    let ok = lost == 0 && server_alive && worker_alive && ready_at_end && saw_outage;
    let mut summary = json!({
        "drill": "outage",
        "mode": format!("{:?}", o.mode).to_lowercase(),
        "ok": ok,
        "documents": o.documents,
        "completed": done,
        "failed": failed,
        "connections_terminated": terminated,
        "outage_seconds": outage_secs,
        "upload_retries": upload_retries,
        "readyz_probes": seen.len(),
        "readyz_503": unready.len(),
        "readyz_unanswered": unanswered,
        "readyz_503_window_seconds": unready.first().zip(unready.last()).map(|(a, b)| b - a),
        "readyz_longest_gap_seconds": longest_probe_gap,
        "ready_at_end": ready_at_end,
        "server_stayed_up": server_alive,
        "worker_stayed_up": worker_alive,
        "elapsed_seconds": elapsed.as_secs_f64(),
    });
    merge(&mut summary, checks);
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    fresh.drop_schema().await;
    Ok(super::exit_code(ok))
}
