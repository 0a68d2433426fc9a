//! `docket models`: the local embedding model's files. `pull` downloads them into the cache
//! ahead of time (the default provider uses the model only once its files are there: it never
//! downloads by itself); `list` shows what the cache holds.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, Subcommand};
use docket_embed::local::{DownloadProgress, Downloaded, LocalConfig};
use docket_embed::{EmbedConfig, EmbedError};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::out::outln;

/// `docket models …`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download the local embedding model into the cache: embed.model (default
    /// sentence-transformers/all-MiniLM-L6-v2) at embed.revision, from embed.hub_url (or
    /// HF_ENDPOINT) into embed.cache_dir. Files already there are kept; an interrupted
    /// download resumes; large files are checked against the SHA-256 the hub names. Prints
    /// the model's folder.
    Pull(PullArgs),
    /// List the models in the cache (embed.cache_dir) and whether each is complete.
    List,
}

/// `docket models pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The hub repository id (owner/name), instead of embed.model.
    #[arg(long)]
    model: Option<String>,
    /// The branch, tag or commit, instead of embed.revision (default main).
    #[arg(long)]
    revision: Option<String>,
    /// The hub's base URL, instead of embed.hub_url (default https://huggingface.co, or
    /// HF_ENDPOINT).
    #[arg(long)]
    hub_url: Option<String>,
}

/// Runs a `docket models` command.
pub async fn models(config: Config, command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::Pull(args) => pull(&config, args).await,
        ModelsCommand::List => list(&config),
    }
}

/// The local provider's settings: the configured ones when the provider is `local` (chosen,
/// or the default), else the defaults.
fn configured(config: &Config) -> LocalConfig {
    match &config.embed.provider {
        EmbedConfig::Local(l) => l.clone(),
        _ => LocalConfig::default(),
    }
}

async fn pull(config: &Config, args: PullArgs) -> anyhow::Result<ExitCode> {
    let mut local = configured(config);
    if let Some(m) = &args.model {
        local.model = m.clone();
    }
    if let Some(r) = &args.revision {
        local.revision = r.clone();
    }
    if let Some(u) = &args.hub_url {
        local.hub_url = u.clone();
    }
    if Path::new(&local.model).is_dir() {
        // A folder is the model itself: nothing to fetch into it.
        if docket_embed::local::present_model_dir(&local).is_some() {
            outln!("the model is the folder {}", local.model)?;
            return Ok(ExitCode::SUCCESS);
        }
        bail!(
            "embed.model is the folder {}, which lacks config.json, tokenizer.json or \
             model.safetensors; docket downloads into its cache only: put the files there, or \
             pass --model with a hub id (e.g. --model {})",
            local.model,
            docket_embed::local::DEFAULT_MODEL
        );
    }
    let hub = docket_embed::local::hub_base_url(&local);
    let revision = if local.revision.is_empty() {
        "main"
    } else {
        local.revision.as_str()
    };
    eprintln!("pulling {} ({revision}) from {hub}", local.model);
    let mut progress = Progress::new();
    let pulled = docket_embed::local::pull(&local, &mut progress)
        .await
        .map_err(|e| {
            let why = match e {
                EmbedError::Permanent(m) | EmbedError::Transient(m) => m,
                EmbedError::Unavailable { message, .. } => message,
            };
            anyhow::anyhow!("pulling {} from {hub} failed: {why}", local.model)
        })?;
    progress.clear();
    if pulled.downloaded.is_empty() {
        eprintln!("every file was in the cache already");
    }
    outln!(
        "{} ({revision}) is in {}",
        local.model,
        pulled.dir.display()
    )?;
    let used = matches!(&config.embed.provider, EmbedConfig::Local(l)
        if l.model == local.model && l.revision == local.revision && l.cache_dir == local.cache_dir);
    if used {
        eprintln!(
            "docket serve and docket worker embed with it from their next start (documents \
             embedded before by another embedder are re-embedded then, with \
             embed.reembed_on_change on)"
        );
    } else if let EmbedConfig::Local(_) = &config.embed.provider {
        eprintln!(
            "the configuration names another model: set embed.model = \"{}\" (and \
             embed.revision = \"{revision}\") to use this one",
            local.model
        );
    } else {
        let provider = match &config.embed.provider {
            EmbedConfig::Hashing(_) => "hashing",
            _ => "openai",
        };
        eprintln!(
            "embed.provider is {provider}: remove it (or set it to \"local\") to embed with this \
             model"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal; otherwise plain lines (a start, every tenth of a large
/// file, an end).
struct Progress {
    bar: Option<ProgressBar>,
    terminal: bool,
    file: String,
    done: u64,
    total: Option<u64>,
    shown_tenths: u64,
    started: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            file: String::new(),
            done: 0,
            total: None,
            shown_tenths: 0,
            started: Instant::now(),
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl DownloadProgress for Progress {
    fn started(&mut self, file: &str, resumed_from: u64, total: Option<u64>) {
        self.clear();
        self.file = file.to_owned();
        self.done = resumed_from;
        self.total = total;
        self.shown_tenths = total.map_or(0, |t| resumed_from * 10 / t.max(1));
        self.started = Instant::now();
        let resumed = if resumed_from > 0 {
            format!(", resuming after {}", HumanBytes(resumed_from))
        } else {
            String::new()
        };
        if self.terminal {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template(
                            "{prefix:26!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(
                        ProgressStyle::with_template(
                            "{prefix:26!} {spinner} {bytes} {bytes_per_sec}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
            };
            bar.set_prefix(file.to_owned());
            bar.set_position(resumed_from);
            bar.enable_steady_tick(Duration::from_millis(200));
            if resumed_from > 0 {
                bar.println(format!(
                    "{file}: resuming after {}",
                    HumanBytes(resumed_from)
                ));
            }
            self.bar = Some(bar);
        } else {
            let size = total.map_or(String::new(), |t| format!(" ({})", HumanBytes(t)));
            eprintln!("downloading {file}{size}{resumed}");
        }
    }

    fn advanced(&mut self, bytes: u64) {
        self.done += bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            return;
        }
        // Plain lines: every tenth of a file over 4 MiB.
        if let Some(t) = self.total.filter(|&t| t > 4 << 20) {
            let tenths = (self.done * 10 / t).min(10);
            if tenths > self.shown_tenths && tenths < 10 {
                self.shown_tenths = tenths;
                eprintln!(
                    "{}: {}% ({} of {})",
                    self.file,
                    tenths * 10,
                    HumanBytes(self.done),
                    HumanBytes(t)
                );
            }
        }
    }

    fn finished(&mut self, file: &Downloaded) {
        self.clear();
        let checked = match &file.sha256 {
            Some(sha) => format!("SHA-256 verified ({sha})"),
            None => "no checksum named by the hub".to_owned(),
        };
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} in {secs:.1} s, {checked}",
            file.file,
            HumanBytes(file.bytes)
        );
    }
}

fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let root = docket_embed::local::cache_root(&configured(config));
    let mut rows = Vec::new();
    if let Ok(repos) = std::fs::read_dir(&root) {
        for repo in repos.flatten().filter(|e| e.path().is_dir()) {
            let name = repo.file_name().to_string_lossy().replace("--", "/");
            let Ok(revisions) = std::fs::read_dir(repo.path()) else {
                continue;
            };
            for rev in revisions.flatten().filter(|e| e.path().is_dir()) {
                let dir = rev.path();
                let (bytes, partial) = folder_size(&dir);
                let complete = ["config.json", "tokenizer.json", "model.safetensors"]
                    .iter()
                    .all(|f| dir.join(f).is_file());
                let state = match (complete, partial) {
                    (true, _) => "complete".to_owned(),
                    (false, 0) => "incomplete (run docket models pull)".to_owned(),
                    (false, _) => format!(
                        "incomplete, {} partial download(s) (run docket models pull to resume)",
                        partial
                    ),
                };
                rows.push(format!(
                    "{name}  {}  {}  {state}",
                    rev.file_name().to_string_lossy(),
                    HumanBytes(bytes)
                ));
            }
        }
    }
    rows.sort();
    if rows.is_empty() {
        outln!("no models in {} (run docket models pull)", root.display())?;
    } else {
        outln!("{}", root.display())?;
        for r in rows {
            outln!("  {r}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The bytes of the files under `dir`, and how many of them are partial downloads.
fn folder_size(dir: &Path) -> (u64, usize) {
    let (mut bytes, mut partial) = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            let (b, p) = folder_size(&path);
            bytes += b;
            partial += p;
        } else if let Ok(m) = e.metadata() {
            bytes += m.len();
            if path.extension().is_some_and(|x| x == "part") {
                partial += 1;
            }
        }
    }
    (bytes, partial)
}
