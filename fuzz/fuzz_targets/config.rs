//! The config loader. `docket`'s `Config` lives in the binary crate (crates/docket/src/
//! config/), which a fuzz target cannot link, so this target does what its loader does
//! with the library-level pieces: parse the file as a `toml::Table`, apply `DOCKET_*`
//! environment overrides with the loader's `parse_value` / `set_path` (copied below,
//! unchanged), then deserialize the sections the loader hands to the libraries
//! (`StorageConfig`, `ParseConfig`, `ChunkConfig`, `StagesConfig`, `NotifyConfig`,
//! `FetchConfig`, `StorageWebhookConfig`, `EmbedConfig`) and call their checks. The
//! binary-only sections (`http`, `log`, `worker`, ...) are left out.
//!
//! Input: the TOML file, then optionally a NUL byte and `KEY=VALUE` lines (the environment).
//! Invariants: no panic; a config that deserialized serializes back to TOML that deserializes
//! to the same TOML again.
#![no_main]

use docket_embed::EmbedConfig;
use docket_pipeline::config::{ChunkConfig, ParseConfig, StagesConfig, StorageConfig};
use docket_pipeline::fetch::FetchConfig;
use docket_pipeline::ingest::StorageWebhookConfig;
use docket_pipeline::notify::NotifyConfig;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct LibConfig {
    #[serde(default)]
    storage: StorageConfig,
    #[serde(default)]
    parse: ParseConfig,
    #[serde(default)]
    chunk: ChunkConfig,
    #[serde(default)]
    embed: Option<EmbedConfig>,
    #[serde(default)]
    notify: NotifyConfig,
    #[serde(default)]
    pipeline: StagesConfig,
    #[serde(default)]
    fetch: Option<FetchConfig>,
    #[serde(default)]
    storage_webhook: Option<StorageWebhookConfig>,
}

// Copied from crates/docket/src/config/load.rs.
fn parse_env_value(v: &str) -> toml::Value {
    format!("x = {v}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("x"))
        .unwrap_or_else(|| toml::Value::String(v.to_owned()))
}

// Copied from crates/docket/src/config/load.rs.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (file, env) = s.split_once('\0').unwrap_or((s, ""));
    let Ok(mut table) = file.parse::<toml::Table>() else {
        return;
    };
    for line in env.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let Some(rest) = k.strip_prefix("DOCKET_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        set_path(&mut table, &path, parse_env_value(v));
    }
    let Ok(config) = table.try_into::<LibConfig>() else {
        return;
    };
    if let Some(w) = &config.storage_webhook {
        let _ = w.validate();
    }
    let _ = config.pipeline.stuck_after();

    if let Ok(first) = toml::to_string(&config) {
        let again: LibConfig = toml::from_str(&first)
            .unwrap_or_else(|e| panic!("re-reading its own TOML failed: {e}\n{first}"));
        let second = toml::to_string(&again).expect("serializes twice");
        assert_eq!(first, second, "config changed on a TOML round trip");
    }
});
