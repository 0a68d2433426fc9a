//! Downloads a model's files from a Hugging Face hub (or a mirror) into the cache folder.

use std::path::PathBuf;

use super::{DEFAULT_HUB_URL, LocalConfig};
use crate::EmbedError;

/// Files the model needs.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// Files used when the repository has them.
const OPTIONAL: [&str; 2] = ["sentence_bert_config.json", "1_Pooling/config.json"];

/// The cache folder when none is configured.
fn default_cache_dir() -> PathBuf {
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

fn hub_url(config: &LocalConfig) -> String {
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

/// Makes sure the model's files are in the cache and returns their folder. Files already
/// there are not fetched again; each file is written under a temporary name and renamed into
/// place, so a crash never leaves a partial file behind.
pub(crate) async fn fetch(config: &LocalConfig) -> Result<PathBuf, EmbedError> {
    let cache = config.cache_dir.clone().unwrap_or_else(default_cache_dir);
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
    let dir = cache.join(config.model.replace('/', "--")).join(revision);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(dir);
    }
    let base = hub_url(config);
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| EmbedError::Transient(format!("http client: {e}")))?;
    tracing::info!(model = %config.model, %revision, hub = %base, dir = %dir.display(), "downloading embedding model");
    for file in REQUIRED.iter().chain(OPTIONAL.iter()) {
        let target = dir.join(file);
        if target.is_file() {
            continue;
        }
        let url = format!("{base}/{}/resolve/{revision}/{file}", config.model);
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| EmbedError::Transient(format!("GET {url}: {e}")))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::UNAUTHORIZED {
            if OPTIONAL.contains(file) {
                continue;
            }
            return Err(EmbedError::Permanent(format!(
                "GET {url}: {status} (no such model or file)"
            )));
        }
        if !status.is_success() {
            return Err(EmbedError::Transient(format!("GET {url}: {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| EmbedError::Transient(format!("GET {url}: {e}")))?;
        let parent = target.parent().expect("file has a parent").to_path_buf();
        let tmp = parent.join(format!(
            ".{}.part-{}",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("download"),
            std::process::id()
        ));
        let shown = target.display().to_string();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&parent)?;
            std::fs::write(&tmp, &body)?;
            std::fs::rename(&tmp, &target)
        })
        .await
        .map_err(|e| EmbedError::Transient(format!("writing {shown}: {e}")))?
        .map_err(|e| EmbedError::Transient(format!("writing {shown}: {e}")))?;
    }
    Ok(dir)
}
