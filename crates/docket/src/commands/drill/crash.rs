//! `docket drill crash`: kill random worker processes while documents go through.

use super::*;

/// `docket drill crash` flags.
#[derive(Debug, Args)]
pub struct CrashDrill {
    /// Documents to push through.
    #[arg(long, default_value_t = 2_000)]
    documents: usize,
    /// Worker processes.
    #[arg(long, default_value_t = 3)]
    workers: usize,
    /// Milliseconds between kills.
    #[arg(long, default_value_t = 3_000)]
    kill_every_ms: u64,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout_secs: u64,
    /// Random seed (documents and victims).
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(super) async fn crash(mut config: Config, c: CrashDrill) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        config.database_url.starts_with("postgres"),
        "the crash drill runs worker processes on PostgreSQL: pass --database-url postgres://…"
    );
    anyhow::ensure!(c.workers >= 1, "--workers must be at least 1");
    let started = Instant::now();
    let blob_dir = tempfile::tempdir()?;
    let log_dir = tempfile::tempdir()?;
    config.storage.blob_dir = blob_dir.path().to_owned();
    config.embed.provider = docket_embed::EmbedConfig::Hashing(Default::default());
    config.notify = Default::default();
    let fresh = Fresh::new(&config, BackendKind::Postgres).await?;
    let Backend::Postgres(driver) = fresh.backend.clone() else {
        anyhow::bail!("expected PostgreSQL");
    };
    let pipeline = crate::pipeline::build(driver.clone(), &config).await?;

    let mut rng = StdRng::seed_from_u64(c.seed);
    let mut ids = Vec::with_capacity(c.documents);
    for i in 0..c.documents {
        let (name, bytes) = document(i, &mut rng);
        let sub = pipeline
            .submit(NewDocument {
                bytes,
                filename: Some(name),
                ..Default::default()
            })
            .await?;
        ids.push(sub.document.id);
    }
    let submitted_in = started.elapsed();

    let mut workers = Workers {
        exe: std::env::current_exe()?,
        url: fresh.url().to_owned(),
        blob_dir: blob_dir.path().to_owned(),
        log_dir: log_dir.path().to_owned(),
        procs: Vec::new(),
        started: 0,
    };
    for _ in 0..c.workers {
        let p = workers.spawn()?;
        workers.procs.push(p);
    }

    let deadline = started + Duration::from_secs(c.timeout_secs);
    let mut kills = 0usize;
    let mut next_kill = Instant::now() + Duration::from_millis(c.kill_every_ms);
    let (done, failed) = loop {
        let (done, failed) = counts(&driver).await?;
        if done + failed >= c.documents as i64 {
            break (done, failed);
        }
        if Instant::now() > deadline {
            break (done, failed);
        }
        if Instant::now() >= next_kill {
            let victim = rng.random_range(0..workers.procs.len());
            // SIGKILL: no shutdown, no released jobs, no final completions.
            workers.procs[victim].kill().await?;
            kills += 1;
            let p = workers.spawn()?;
            workers.procs[victim] = p;
            next_kill = Instant::now() + Duration::from_millis(c.kill_every_ms);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    for p in &mut workers.procs {
        let _ = p.kill().await;
    }

    drop(pipeline);
    let (lost, checks) = verify(&driver, c.documents as i64, done).await?;
    let ok = lost == 0;
    let mut summary = json!({
        "drill": "crash",
        "ok": ok,
        "documents": c.documents,
        "completed": done,
        "failed": failed,
        "workers": c.workers,
        "kills": kills,
        "worker_processes_started": workers.started,
        "submit_seconds": submitted_in.as_secs_f64(),
        "elapsed_seconds": elapsed.as_secs_f64(),
        "documents_per_second": done as f64 / elapsed.saturating_sub(submitted_in).as_secs_f64().max(0.001),
    });
    merge(&mut summary, checks);
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    if !ok {
        print_log_tails(log_dir.path(), 3);
    }
    fresh.drop_schema().await;
    Ok(super::exit_code(ok))
}
