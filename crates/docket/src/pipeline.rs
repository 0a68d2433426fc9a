//! Builds the document pipeline from configuration.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use docket_core::Driver;
use docket_parse::{Isolation, Limits};
use docket_pipeline::blob::ObjectStoreBlobs;
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{ParseSettings, Pipeline, PipelineParts};

use crate::config::Config;

/// The parse bounds the configuration describes; the isolated parser is this executable's
/// hidden `parse-child` command.
pub fn parse_settings(config: &Config) -> anyhow::Result<ParseSettings> {
    let p = &config.parse;
    let limits = Limits {
        max_input_bytes: config.storage.max_file_bytes,
        max_text_bytes: p.max_text_bytes,
        max_unzipped_bytes: p.max_unzipped_bytes,
    };
    let isolation = if p.isolate {
        Some(Isolation {
            program: std::env::current_exe().context("locating the docket executable")?,
            args: vec![OsString::from("parse-child")],
            timeout: Duration::from_millis(p.timeout_ms),
            memory_bytes: p.memory_mb * 1024 * 1024,
        })
    } else {
        None
    };
    Ok(ParseSettings { limits, isolation })
}

/// Loads the embedding provider and assembles the pipeline.
pub async fn build<D: Driver>(driver: D, config: &Config) -> anyhow::Result<Pipeline<D>> {
    let embedder = docket_embed::build(&config.embed.provider)
        .await
        .context("loading the embedding provider")?;
    tracing::info!(
        embedder = embedder.name(),
        dimensions = embedder.dimensions(),
        "embedding provider ready"
    );
    if matches!(config.embed.provider, docket_embed::EmbedConfig::Hashing(_)) {
        tracing::info!(
            "the hashing embedder is lexical: it matches shared words, not meaning; set \
             embed.provider = \"local\" or \"openai\" for semantic search"
        );
    }
    if config.notify.webhook.secret.is_none() {
        tracing::info!(
            "notify.webhook.secret is not set: webhooks to callback URLs go out unsigned"
        );
    }
    let blobs = ObjectStoreBlobs::local(&config.storage.blob_dir)
        .with_context(|| format!("opening {}", config.storage.blob_dir.display()))?;
    let progress = ProgressHub::over(driver.broadcasts());
    let pipeline = Pipeline::new(PipelineParts {
        driver,
        blobs: Arc::new(blobs),
        embedder,
        parse: parse_settings(config)?,
        chunk: config.chunk.clone(),
        stages: config.pipeline.clone(),
        max_file_bytes: config.storage.max_file_bytes,
        notifier: Notifier::new(&config.notify)?,
        progress,
    })?;
    Ok(pipeline)
}
