//! Builds the document pipeline from configuration.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use docket_core::Driver;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_embed::local::{LocalConfig, LocalEmbedder};
use docket_embed::{EmbedConfig, Embedder};
use docket_parse::{Isolation, Limits};
use docket_pipeline::blob::{BlobStore, ObjectStoreBlobs};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::{ParseSettings, Pipeline, PipelineParts};

use crate::config::{Config, EmbedSection};

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

/// Which embedding provider to build.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedChoice {
    /// The provider the configuration names (or implies by its settings).
    Configured(EmbedConfig),
    /// The default local model, whose files are on disk: loaded without any download.
    DefaultLocal(LocalConfig),
    /// The default local model is not on disk: the lexical `hashing` embedder stands in, and
    /// `note` says so and how to fix it.
    Fallback {
        /// The stand-in.
        hashing: HashingConfig,
        /// Why, and what to run.
        note: String,
    },
}

/// Decides the embedding provider without loading it. A provider the configuration chose is
/// used as it is (an explicit `local` hub id may download at load). Without one, the default
/// `local` model is used when its files are on disk, and never downloaded: while they are
/// not there, `hashing` stands in (keeping `embed.max_tokens` when set), with a note naming
/// the command that fixes it.
pub fn choose_embedder(embed: &EmbedSection) -> EmbedChoice {
    let local = match &embed.provider {
        EmbedConfig::Local(local) if !embed.explicit => local,
        other => return EmbedChoice::Configured(other.clone()),
    };
    if docket_embed::local::present_model_dir(local).is_some() {
        EmbedChoice::DefaultLocal(local.clone())
    } else {
        let (hashing, note) = stand_in(local);
        EmbedChoice::Fallback { hashing, note }
    }
}

/// `hashing` in place of the default local model, and the note saying so.
fn stand_in(local: &LocalConfig) -> (HashingConfig, String) {
    let hashing = HashingConfig {
        max_tokens: local
            .max_tokens
            .unwrap_or(HashingConfig::default().max_tokens),
        ..HashingConfig::default()
    };
    let note = if Path::new(&local.model).is_dir() {
        format!(
            "the local model folder {} lacks config.json, tokenizer.json or model.safetensors: \
             search is lexical (hashing). Put the model's files there, or set embed.model to a \
             hub id and run: docket models pull",
            local.model
        )
    } else {
        let name = local.model.rsplit('/').next().unwrap_or(&local.model);
        format!(
            "the local model {name} is not downloaded: search is lexical (hashing). Run: \
             docket models pull"
        )
    };
    (hashing, note)
}

/// Loads the embedding provider [`choose_embedder`] picks. A stand-in for the default model
/// is wrapped in [`docket_embed::Fallback`], so that `/readyz`, the dashboard and `docket
/// status` show its note.
pub async fn embedder(embed: &EmbedSection) -> anyhow::Result<Arc<dyn Embedder>> {
    let loading = "loading the embedding provider";
    match choose_embedder(embed) {
        EmbedChoice::Configured(c) => docket_embed::build(&c).await.context(loading),
        EmbedChoice::DefaultLocal(c) => {
            let found = LocalEmbedder::load_present(c.clone())
                .await
                .with_context(|| {
                    format!(
                        "{loading}: the default local model ({}) is on disk but does not load; \
                         delete its folder and run docket models pull, or set \
                         embed.provider = \"hashing\"",
                        c.model
                    )
                })?;
            Ok(match found {
                Some(e) => Arc::new(e),
                // Removed since it was found: the same as never there.
                None => {
                    let (hashing, note) = stand_in(&c);
                    fallback(hashing, note)
                }
            })
        }
        EmbedChoice::Fallback { hashing, note } => Ok(fallback(hashing, note)),
    }
}

/// The `hashing` stand-in, announced loudly.
fn fallback(hashing: HashingConfig, note: String) -> Arc<dyn Embedder> {
    tracing::warn!(
        "{note} (or set embed.provider = \"hashing\" to choose lexical search and silence \
         this)"
    );
    Arc::new(docket_embed::Fallback::new(
        Arc::new(HashingEmbedder::new(hashing)),
        note,
    ))
}

/// Loads the embedding provider and assembles the pipeline.
pub async fn build<D: Driver>(driver: D, config: &Config) -> anyhow::Result<Pipeline<D>> {
    let embedder = embedder(&config.embed).await?;
    tracing::info!(
        embedder = embedder.name(),
        dimensions = embedder.dimensions(),
        "embedding provider ready"
    );
    if embedder.identity().spec.provider == "hashing" && embedder.fallback().is_none() {
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
    let blobs =
        ObjectStoreBlobs::open(&config.storage).context("opening the storage of originals")?;
    tracing::info!("originals are stored in {}", BlobStore::describe(&blobs));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The default `[embed]` with its cache in `cache`.
    fn default_in(cache: &Path) -> EmbedSection {
        let mut embed = EmbedSection::default();
        if let EmbedConfig::Local(l) = &mut embed.provider {
            l.cache_dir = Some(cache.to_owned());
        }
        embed
    }

    #[test]
    fn the_default_is_the_local_model_only_when_it_is_on_disk() {
        let cache = tempfile::tempdir().unwrap();
        let embed = default_in(cache.path());
        match choose_embedder(&embed) {
            EmbedChoice::Fallback { hashing, note } => {
                assert_eq!(hashing, HashingConfig::default());
                assert_eq!(
                    note,
                    "the local model all-MiniLM-L6-v2 is not downloaded: search is lexical \
                     (hashing). Run: docket models pull"
                );
            }
            other => panic!("{other:?}"),
        }
        // Once `docket models pull` has put the files in the cache.
        let dir = cache
            .path()
            .join("sentence-transformers--all-MiniLM-L6-v2/main");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["config.json", "tokenizer.json"] {
            std::fs::write(dir.join(f), "{}").unwrap();
        }
        assert!(matches!(
            choose_embedder(&embed),
            EmbedChoice::Fallback { .. }
        ));
        std::fs::write(dir.join("model.safetensors"), "").unwrap();
        assert_eq!(
            choose_embedder(&embed),
            EmbedChoice::DefaultLocal(match &embed.provider {
                EmbedConfig::Local(l) => l.clone(),
                other => panic!("{other:?}"),
            })
        );

        // `embed.model` naming a folder without the files.
        let mut folder = default_in(cache.path());
        if let EmbedConfig::Local(l) = &mut folder.provider {
            l.model = cache.path().display().to_string();
            l.max_tokens = Some(100);
        }
        match choose_embedder(&folder) {
            EmbedChoice::Fallback { hashing, note } => {
                assert_eq!(hashing.max_tokens, 100, "embed.max_tokens is kept");
                assert!(note.contains("lacks config.json"), "{note}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chosen_provider_is_used_as_it_is() {
        let cache = tempfile::tempdir().unwrap();
        let mut embed = default_in(cache.path());
        embed.explicit = true;
        // An explicit local hub id loads (and may download) as before.
        assert!(matches!(
            choose_embedder(&embed),
            EmbedChoice::Configured(EmbedConfig::Local(_))
        ));
        embed.provider = EmbedConfig::Hashing(HashingConfig::default());
        assert_eq!(
            choose_embedder(&embed),
            EmbedChoice::Configured(EmbedConfig::Hashing(HashingConfig::default()))
        );
        // A provider set in code (drills, benchmarks) is used as it is too.
        embed.explicit = false;
        assert!(matches!(
            choose_embedder(&embed),
            EmbedChoice::Configured(EmbedConfig::Hashing(_))
        ));
    }

    #[tokio::test]
    async fn the_stand_in_says_why() {
        let cache = tempfile::tempdir().unwrap();
        let e = embedder(&default_in(cache.path())).await.unwrap();
        assert_eq!(e.name(), "hashing:384");
        assert!(
            e.fallback()
                .is_some_and(|n| n.contains("docket models pull"))
        );
        let mut explicit = default_in(cache.path());
        explicit.provider = EmbedConfig::Hashing(HashingConfig::default());
        explicit.explicit = true;
        let e = embedder(&explicit).await.unwrap();
        assert_eq!((e.name(), e.fallback()), ("hashing:384", None));
    }
}
