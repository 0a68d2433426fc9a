//! `docket reindex` and `docket status` without a document: a running server's embedder, the
//! documents search cannot rank because another embedder made their vectors, and the durable
//! job that re-embeds them (over the HTTP API, like `submit` and `search`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::client::{Client, EXIT_CODES, Failure, ServerArgs, finish, pretty, text};
use crate::config::Config;
use crate::out::outln;

/// `docket reindex`
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct ReindexArgs {
    /// Follow the re-embedding until no document is left to move, printing progress.
    #[arg(long)]
    wait: bool,
    /// Print the server's answers as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Starts re-embedding the documents another embedder made vectors for (needs the admin
/// scope); one job at a time, so asking twice follows the same job.
pub async fn reindex(config: Config, args: ReindexArgs) -> anyhow::Result<ExitCode> {
    finish(run(&config, &args).await)
}

async fn run(config: &Config, args: &ReindexArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(config, &args.server)?;
    let started = client
        .json(client.request(Method::POST, "/v1/reindex"))
        .await?;
    if args.json && !args.wait {
        outln!("{}", pretty(&started))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        let verb = if started["created"] == true {
            "started"
        } else {
            "already running as"
        };
        outln!(
            "re-embedding {} document(s): {verb} job {}",
            started["stale_documents"].as_i64().unwrap_or(0),
            text(&started["job_id"])
        )?;
    }
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let job_id = started["job_id"].as_i64();
    let mut last = String::new();
    loop {
        let status = client
            .json(client.request(Method::GET, "/v1/reindex"))
            .await?;
        let embedder = &status["embedder"];
        let line = format!(
            "{} current, {} left ({} in progress)",
            embedder["current_documents"].as_i64().unwrap_or(0),
            embedder["stale_documents"].as_i64().unwrap_or(0),
            embedder["reembedding_documents"].as_i64().unwrap_or(0)
        );
        if line != last && !args.json {
            outln!("{line}")?;
            last = line;
        }
        let job = &status["job"];
        let ours = job["id"].as_i64() == job_id;
        match job["state"].as_str() {
            Some("completed") if ours => {
                if args.json {
                    outln!("{}", pretty(&status))?;
                }
                let left = embedder["stale_documents"].as_i64().unwrap_or(0);
                if left > 0 {
                    eprintln!("{left} document(s) could not be re-embedded; see their errors");
                    return Ok(ExitCode::FAILURE);
                }
                return Ok(ExitCode::SUCCESS);
            }
            Some(state @ ("failed" | "cancelled")) if ours => {
                return Err(Failure::Api(format!(
                    "the re-embedding job {} was {state}: {}",
                    text(&job["id"]),
                    job["last_error"].as_str().unwrap_or("no error recorded")
                )));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `docket status` without a document: the server's embedder (with a warning while `hashing`
/// stands in for the default local model, not downloaded) and what search leaves out.
pub(crate) async fn server_status(client: &Client, json: bool) -> Result<ExitCode, Failure> {
    let mut status = client
        .json(client.request(Method::GET, "/v1/reindex"))
        .await?;
    // Whether `hashing` stands in for the default local model (`/readyz` says; a server
    // that cannot say is not a reason to fail).
    let fallback = client
        .json(client.request(Method::GET, "/readyz"))
        .await
        .ok()
        .and_then(|r| r["embedder"]["fallback"].as_str().map(str::to_owned));
    if json {
        if let (Some(note), Some(e)) = (&fallback, status["embedder"].as_object_mut()) {
            e.insert("fallback".into(), Value::String(note.clone()));
        }
        outln!("{}", pretty(&status))?;
        return Ok(ExitCode::SUCCESS);
    }
    let e = &status["embedder"];
    outln!(
        "{:<11}{} ({})",
        "embedder:",
        text(&e["name"]),
        text(&e["fingerprint"])
    )?;
    if let Some(note) = &fallback {
        outln!("{:<11}{note}", "WARNING:")?;
    }
    outln!(
        "{:<11}{} searchable with it, {} not (another embedder made their vectors), {} being \
         processed again",
        "documents:",
        e["current_documents"].as_i64().unwrap_or(0),
        e["stale_documents"].as_i64().unwrap_or(0),
        e["reembedding_documents"].as_i64().unwrap_or(0)
    )?;
    for s in e["stale"].as_array().into_iter().flatten() {
        outln!(
            "{:<11}{}: {}",
            "",
            s["documents"].as_i64().unwrap_or(0),
            s["reason"].as_str().unwrap_or("")
        )?;
    }
    let job: &Value = &status["job"];
    if !job.is_null() {
        outln!(
            "{:<11}job {} {}",
            "reindex:",
            text(&job["id"]),
            text(&job["state"])
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
