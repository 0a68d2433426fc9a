//! `docket`: the command line.
//!
//! `serve` and `worker` run the queue; `migrate`, `config`, `jobs`, `queues` and `cron` talk
//! to the database directly (they are operator tools that must work when no server is up);
//! `submit`, `status` and `search` talk to a running `docket serve` over HTTP; `models`
//! downloads the local embedding model; `bench` measures.

mod backend;
mod builtin;
mod commands;
mod config;
mod out;
mod pipeline;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Durable document ingestion: every stage a job in a durable queue.
#[derive(Debug, Parser)]
#[command(name = "docket", version, about)]
struct Cli {
    /// Config file (TOML). Default: ./docket.toml when it exists.
    #[arg(long, global = true, env = "DOCKET_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL; overrides the file and DOCKET_DATABASE_URL.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Set any configuration key, over the file and the environment (repeatable), e.g.
    /// `--set worker.concurrency=4 --set embed.provider=hashing`.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run docket: workers and maintenance in one process (the embedded default needs no
    /// configuration: an SQLite file in the working directory).
    Serve(commands::run::RunArgs),
    /// Run a worker process that shares the database with others (PostgreSQL).
    Worker(commands::run::RunArgs),
    /// Apply database migrations and exit. Talks to the database directly.
    Migrate,
    /// Print the effective configuration, secrets masked.
    Config,
    /// Inspect and repair jobs. Talks to the database directly.
    #[command(subcommand)]
    Jobs(commands::admin::JobsCommand),
    /// Pause and resume queues. Talks to the database directly.
    #[command(subcommand)]
    Queues(commands::admin::QueuesCommand),
    /// Cron schedules and their history. Talks to the database directly.
    #[command(subcommand)]
    Cron(commands::admin::CronCommand),
    /// The built-in alerts: open ones, history, silences. Talks to the database directly.
    #[command(subcommand)]
    Alerts(commands::alerts::AlertsCommand),
    /// Upload files (or URLs) to a running docket server over HTTP; --wait follows them.
    Submit(commands::client::SubmitArgs),
    /// Show a document's processing state, or without one the server's embedder and the
    /// documents its search cannot rank, from a running docket server over HTTP.
    Status(commands::client::StatusArgs),
    /// Re-embed the documents another embedder made vectors for, as a durable job on a
    /// running docket server (over HTTP, admin scope); --wait follows it.
    Reindex(commands::reindex::ReindexArgs),
    /// Search the indexed documents of a running docket server over HTTP.
    Search(commands::client::SearchArgs),
    /// The local embedding model's files: `pull` downloads them into the cache (resumable,
    /// checked), `list` shows the cache. The default embedder uses the model once pulled.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Benchmarks, printing JSON.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Reliability drills (crashes and faults), printing a JSON summary; exit 1 when anything
    /// was lost.
    #[command(subcommand)]
    Drill(commands::drill::DrillCommand),
    /// Internal: the isolated parser process the parse stage spawns (reads a file on stdin,
    /// writes the extracted text as JSON on stdout).
    #[command(hide = true)]
    ParseChild,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::ParseChild) {
        // Before configuration and logging: its stdout is the protocol.
        return docket_parse::child_main();
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docket: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command, config)) {
        Ok(code) => code,
        // The reader of our output went away (`| head`): what it wanted, it got.
        Err(e) if out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if out::is_usage(&e) => {
            eprintln!("docket: {}", out::one_line(&e));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("docket: {}", out::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Config::load(cli.config.as_deref(), &cli.set, cli.database_url.as_deref())
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colour only for a person at a terminal, and never with NO_COLOR set (no-color.org).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn dispatch(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(a) => commands::run::run(config, a, true).await,
        Command::Worker(a) => commands::run::run(config, a, false).await,
        Command::Migrate => commands::admin::migrate(config).await,
        Command::Config => {
            out::out!("{}", config.to_masked_toml())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(c) => commands::admin::jobs(config, c).await,
        Command::Queues(c) => commands::admin::queues(config, c).await,
        Command::Cron(c) => commands::admin::cron(config, c).await,
        Command::Alerts(c) => commands::alerts::alerts(config, c).await,
        Command::Submit(a) => commands::client::submit(config, a).await,
        Command::Status(a) => commands::client::status(config, a).await,
        Command::Search(a) => commands::client::search(config, a).await,
        Command::Reindex(a) => commands::reindex::reindex(config, a).await,
        Command::Models(c) => commands::models::models(config, c).await,
        Command::Bench(c) => commands::bench::bench(config, c).await,
        Command::Drill(c) => commands::drill::drill(config, c).await,
        Command::ParseChild => unreachable!("handled before the runtime starts"),
    }
}
