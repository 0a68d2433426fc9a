//! `docket drill hostile`: the hostile corpus against a real `docket serve`, over and over.

use super::*;

/// `docket drill hostile` flags.
#[derive(Debug, Args)]
pub struct HostileDrill {
    /// Times each file is processed (the first upload, then re-processing).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Give up (and fail) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// The hostile corpus, committed with the parser's tests.
const HOSTILE: &[(&str, &[u8])] = &[
    (
        "loop.pdf",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/loop.pdf"),
    ),
    (
        "corrupt.pdf",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/corrupt.pdf"),
    ),
    (
        "truncated.pdf",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/truncated.pdf"),
    ),
    (
        "bomb.docx",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/bomb.docx"),
    ),
    (
        "deep.html",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/deep.html"),
    ),
    (
        "garbage.txt",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/garbage.txt"),
    ),
    (
        "invalid-utf8.json",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/invalid-utf8.json"),
    ),
    (
        "invalid-utf8.txt",
        include_bytes!("../../../../docket-parse/tests/corpus/hostile/invalid-utf8.txt"),
    ),
];

fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(super) async fn hostile(h: HostileDrill) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    const LIMIT: u64 = 4 << 20;
    let mut server = {
        let mut cmd = tokio::process::Command::new(&exe);
        for (k, _) in std::env::vars() {
            if k.starts_with("DOCKET_") {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(dir.path())
            .arg("serve")
            .env("DOCKET_HTTP__LISTEN", "127.0.0.1:0")
            .env("DOCKET_EMBED__PROVIDER", "hashing")
            .env("DOCKET_LOG__LEVEL", "warn")
            .env("DOCKET_STORAGE__MAX_FILE_BYTES", LIMIT.to_string())
            .env("DOCKET_WORKER__POLL_INTERVAL_MS", "100")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd.spawn()?
    };
    let pid = server
        .id()
        .ok_or_else(|| anyhow::anyhow!("the server exited at once"))?;
    let base = super::listening_url(&mut server).await?;
    let idle_rss_kb = rss_kb(pid, "VmRSS:").unwrap_or(0);
    let http = reqwest::Client::builder().no_proxy().build()?;
    let form = |name: &str, bytes: Vec<u8>, reprocess: bool| {
        let mut f = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
        if reprocess {
            f = f.text("reprocess", "true");
        }
        f
    };

    // Refused at the door: an empty file (422) and one over the limit (413).
    let mut refusals = serde_json::Map::new();
    for (name, bytes, want) in [
        ("empty.txt", Vec::new(), 422u16),
        ("huge.txt", vec![b'a'; LIMIT as usize + 1], 413),
    ] {
        let r = http
            .post(format!("{base}/v1/documents"))
            .multipart(form(name, bytes, false))
            .send()
            .await?;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        refusals.insert(
            name.into(),
            json!({ "status": status, "expected": want, "error": body["error"] }),
        );
    }

    // The rest, `rounds` times each: uploaded, then re-processed.
    let mut ids = Vec::new();
    for (name, bytes) in HOSTILE {
        let r = http
            .post(format!("{base}/v1/documents"))
            .multipart(form(name, bytes.to_vec(), false))
            .send()
            .await?;
        let body: serde_json::Value = r.json().await?;
        let id = body["document"]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("upload of {name}: {body}"))?
            .to_owned();
        ids.push((*name, id));
    }
    let mut peak_kb = rss_kb(pid, "VmRSS:").unwrap_or(0);
    let deadline = started + Duration::from_secs(h.timeout_secs);
    let mut results: Vec<(String, serde_json::Value)> = Vec::new();
    for round in 0..h.rounds {
        // Wait for this round to finish (no document still in progress).
        loop {
            peak_kb = peak_kb.max(rss_kb(pid, "VmRSS:").unwrap_or(0));
            let mut busy = 0;
            results.clear();
            for (name, id) in &ids {
                let d: serde_json::Value = http
                    .get(format!("{base}/v1/documents/{id}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let st = d["status"].as_str().unwrap_or("").to_owned();
                if st != "completed" && st != "failed" {
                    busy += 1;
                }
                results.push((name.to_string(), d));
            }
            if busy == 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "documents still in progress at the deadline"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if round + 1 < h.rounds {
            for (name, id) in &ids {
                let r = http
                    .post(format!("{base}/v1/documents/{id}/reprocess"))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "reprocess {name}: {}", r.status());
            }
        }
    }
    let server_alive = server.try_wait()?.is_none();
    let healthy = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    // Attempts per parse job: a hostile file must fail once, not be retried.
    let jobs: serde_json::Value = http
        .get(format!("{base}/v1/jobs?kind=docket.parse&limit=1000"))
        .send()
        .await?
        .json()
        .await?;
    let max_parse_attempts = jobs["jobs"]
        .as_array()
        .map(|j| {
            j.iter()
                .filter_map(|j| j["attempts"].as_i64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let vm_hwm_kb = rss_kb(pid, "VmHWM:").unwrap_or(0);
    let _ = server.kill().await;

    let mut unclear = 0;
    let mut files = serde_json::Map::new();
    for (name, d) in &results {
        let status = d["status"].as_str().unwrap_or("");
        let error = d["error"].as_str().unwrap_or("");
        // A parser may recover text from a damaged file; a failure must say why, at parse.
        if status == "failed" && (error.len() < 10 || d["error_stage"] != "parse") {
            unclear += 1;
        }
        files.insert(
            name.clone(),
            json!({ "status": status, "generation": d["generation"], "error": error }),
        );
    }
    let refused_right = refusals
        .values()
        .all(|r| r["status"] == r["expected"] && r["error"].is_string());
    let ok = server_alive && healthy && unclear == 0 && refused_right && max_parse_attempts <= 1;
    let summary = json!({
        "drill": "hostile",
        "ok": ok,
        "rounds": h.rounds,
        "files": files,
        "refused_at_upload": refusals,
        "unclear_errors": unclear,
        "max_parse_attempts": max_parse_attempts,
        "server_stayed_up": server_alive && healthy,
        "server_idle_rss_mb": idle_rss_kb as f64 / 1024.0,
        "server_peak_rss_mb": vm_hwm_kb.max(peak_kb) as f64 / 1024.0,
        "elapsed_seconds": started.elapsed().as_secs_f64(),
    });
    outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(super::exit_code(ok))
}
