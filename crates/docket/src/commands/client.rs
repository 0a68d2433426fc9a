//! `docket submit`, `docket status`, `docket search` and `docket reindex`: clients of a
//! running `docket serve`, over its HTTP API.
//!
//! Unlike `jobs`, `queues` and `cron`, which open the database, these need a server: by
//! default the one this configuration describes (`http://` and `http.listen`), else the one
//! `--server` or `DOCKET_SERVER` names. `--api-key` or `DOCKET_API_KEY` is sent as a bearer
//! key. The client never goes through a proxy from the environment: the server is usually
//! local, and a proxy would see the key.
//!
//! `submit --wait` follows each document's server-sent events (`/v1/documents/{id}/events`),
//! reconnecting when the stream breaks before the document finishes (a new stream starts
//! with the document's current state, so nothing is missed).
//!
//! Exit codes, shared by the three commands:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | a document failed (`submit --wait`), the server answered an error, or not found |
//! | 2 | usage or configuration error (a bad flag, a file that cannot be read) |
//! | 3 | the server could not be reached (connection refused, timeout) |
//! | 4 | the API key was refused (`401`) or lacks the scope (`403`) |

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::config::Config;
use crate::out::{out, outln};

/// The exit codes, as shown by `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a document failed (submit --wait), the server answered an error, or not found
  2  usage or configuration error
  3  the server could not be reached
  4  the API key was refused (401) or lacks the scope (403)";

/// How to reach the server; shared by the HTTP client commands.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of the running docket server [default: http:// and the configured
    /// http.listen]
    #[arg(long, env = "DOCKET_SERVER", value_name = "URL")]
    server: Option<String>,
    /// API key, sent as `Authorization: Bearer KEY`.
    #[arg(
        long,
        env = "DOCKET_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    api_key: Option<String>,
}

/// `docket submit`
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct SubmitArgs {
    /// Files to upload, or http(s) URLs for the server to fetch.
    #[arg(required = true, value_name = "FILE|URL")]
    inputs: Vec<String>,
    /// Follow each document until it completes or fails, with a progress bar.
    #[arg(long)]
    wait: bool,
    /// URL the server notifies when each document finishes.
    #[arg(long, value_name = "URL")]
    callback_url: Option<String>,
    /// Process again a document whose identical bytes were submitted before.
    #[arg(long)]
    reprocess: bool,
    /// Print the documents as a JSON array (and draw no progress bars).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `docket status`
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct StatusArgs {
    /// The document's id; without one, the server's: its embedder and the documents search
    /// cannot rank (another embedder made their vectors).
    id: Option<uuid::Uuid>,
    /// Print the document as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `docket search`
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct SearchArgs {
    /// What to look for.
    query: String,
    /// How many chunks to return, 1 to 1000.
    #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    k: u16,
    /// Only documents whose file name contains this (either case).
    #[arg(long, value_name = "TEXT")]
    filename: Option<String>,
    /// Only documents whose metadata contains this JSON object, e.g. '{"team": "ops"}'.
    #[arg(long, value_name = "JSON", value_parser = parse_metadata)]
    metadata: Option<Value>,
    /// How to rank: hybrid (meaning and words, fused), vector (meaning) or text (words).
    #[arg(long, default_value = "hybrid", value_parser = ["hybrid", "vector", "text"])]
    mode: String,
    /// Print the server's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// `--metadata`: a JSON object.
fn parse_metadata(s: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("expected a JSON object, e.g. '{\"team\": \"ops\"}'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Why a client command stopped; each kind has its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A bad argument or configuration (2).
    Usage(String),
    /// The server could not be reached (3).
    Unreachable(String),
    /// The key was refused (4).
    Auth(String),
    /// The server answered an error (1).
    Api(String),
    /// Standard output was closed by its reader (`| head`): stop quietly (0).
    ClosedPipe,
}

/// Writing the output failed: [`crate::out`]'s errors.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if crate::out::is_closed_pipe(&e) {
            Failure::ClosedPipe
        } else {
            Failure::Api(format!("cannot write the output: {e:#}"))
        }
    }
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::ClosedPipe => 0,
            Failure::Api(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
            Failure::Auth(_) => 4,
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Unreachable(m) | Failure::Auth(m) | Failure::Api(m) => m,
            Failure::ClosedPipe => "",
        }
    }
}

/// Prints a failure and turns it into its exit code.
pub(crate) fn finish(result: Result<ExitCode, Failure>) -> anyhow::Result<ExitCode> {
    Ok(result.unwrap_or_else(|f| {
        if !matches!(f, Failure::ClosedPipe) {
            eprintln!("docket: {}", f.message());
        }
        ExitCode::from(f.code())
    }))
}

/// A connection to the server's API.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub(crate) fn new(config: &Config, args: &ServerArgs) -> Result<Self, Failure> {
        let base = match &args.server {
            Some(s) => s.trim_end_matches('/').to_owned(),
            None => default_server(&config.http.listen),
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::Usage(format!(
                "--server must be an http:// or https:// URL (got {base:?})"
            )));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            // Longer than the event streams' keep-alive interval (15 s).
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("docket/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            key: args.api_key.clone().filter(|k| !k.is_empty()),
        })
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    /// Sends a request; an answer that is not a success becomes a failure.
    async fn send(&self, rb: RequestBuilder) -> Result<Response, Failure> {
        let resp = rb.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().chars().take(300).collect());
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Failure::Auth(format!(
                "the server refused the API key ({status}): {message}"
            )),
            StatusCode::NOT_FOUND => Failure::Api(format!("not found: {message}")),
            _ => Failure::Api(format!("the server answered {status}: {message}")),
        })
    }

    /// Sends a request and reads its JSON answer.
    pub(crate) async fn json(&self, rb: RequestBuilder) -> Result<Value, Failure> {
        let resp = self.send(rb).await?;
        resp.json().await.map_err(|e| self.transport(e))
    }

    fn transport(&self, e: reqwest::Error) -> Failure {
        if e.is_decode() {
            return Failure::Api(format!("the server's answer is not JSON: {e}"));
        }
        if e.is_builder() {
            return Failure::Usage(format!("bad request to {}: {}", self.base, chain(&e)));
        }
        Failure::Unreachable(format!(
            "cannot reach the docket server at {}: {}",
            self.base,
            chain(&e)
        ))
    }
}

/// `http://` and the listen address, with a wildcard address replaced by loopback.
fn default_server(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        }
        Err(_) => format!("http://{listen}"),
    }
}

/// An error's causes on one line (reqwest's own message only repeats the URL).
fn chain(e: &dyn std::error::Error) -> String {
    let Some(first) = e.source() else {
        return e.to_string();
    };
    let mut s = first.to_string();
    let mut source = first.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            let _ = write!(s, ": {c}");
        }
        source = cause.source();
    }
    s
}

/// `docket submit`: uploads files (or hands URLs to the server), optionally following them.
pub async fn submit(config: Config, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    // The documents the server has accepted so far, for a Ctrl-C at any point.
    let accepted = std::sync::Mutex::new(Vec::new());
    tokio::select! {
        result = submit_all(&config, &args, &accepted) => finish(result),
        _ = tokio::signal::ctrl_c() => {
            let accepted = accepted.lock().map(|a| a.clone()).unwrap_or_default();
            if accepted.is_empty() {
                eprintln!("docket: stopped; the server accepted no document");
            } else {
                eprintln!(
                    "docket: stopped; the server goes on processing what it accepted. See where \
                     each stands with:"
                );
                tell_how_to_follow(&accepted);
            }
            Ok(ExitCode::from(130))
        }
    }
}

/// `docket status ID` for each accepted document (id, name).
fn tell_how_to_follow(accepted: &[(String, String)]) {
    for (id, name) in accepted {
        eprintln!("  docket status {id}    # {name}");
    }
}

/// One document accepted by the server.
struct Submitted {
    /// What the user named: a file name or a URL.
    label: String,
    created: bool,
    document: Value,
}

async fn submit_all(
    config: &Config,
    args: &SubmitArgs,
    accepted: &std::sync::Mutex<Vec<(String, String)>>,
) -> Result<ExitCode, Failure> {
    let client = Client::new(config, &args.server)?;
    // Check every file first, so that a typo submits nothing.
    for input in args.inputs.iter().filter(|i| !is_url(i)) {
        if !Path::new(input).is_file() {
            return Err(Failure::Usage(format!("{input}: no such file")));
        }
    }
    let mut submitted = Vec::new();
    let mut errors = 0;
    for input in &args.inputs {
        match submit_one(&client, args, input).await {
            Ok(s) => {
                let (id, name) = (text(&s.document["id"]), name_of(&s, &s.document));
                if args.wait {
                    // Each id as soon as it exists, so that a wait cut short loses none.
                    eprintln!("docket: submitted {id}  {name}");
                }
                if let Ok(mut a) = accepted.lock() {
                    a.push((id, name));
                }
                submitted.push(s);
            }
            // The server refused this one; the others may still go in.
            Err(Failure::Api(m)) => {
                eprintln!("docket: {input}: {m}");
                errors += 1;
            }
            Err(f) => {
                if !submitted.is_empty() {
                    eprintln!("docket: before this, the server accepted:");
                    tell_how_to_follow(&accepted.lock().map(|a| a.clone()).unwrap_or_default());
                }
                return Err(f);
            }
        }
    }
    let documents = if args.wait {
        wait_all(&client, args, &submitted).await?
    } else {
        submitted.iter().map(|s| s.document.clone()).collect()
    };
    let mut failed = 0;
    if args.json {
        outln!("{}", pretty(&Value::Array(documents.clone())))?;
    }
    for (s, doc) in submitted.iter().zip(&documents) {
        let is_failed = doc["status"] == "failed" || doc["status"] == "cancelled";
        failed += usize::from(is_failed);
        if args.json || (args.wait && std::io::stdout().is_terminal()) {
            continue; // the JSON or the progress bars said it
        }
        let mut line = format!(
            "{}  {:<10}  {}",
            text(&doc["id"]),
            text(&doc["status"]),
            name_of(s, doc)
        );
        if is_failed {
            let _ = write!(line, "  error: {}", text(&doc["error"]));
        } else if !s.created && !args.wait {
            line.push_str("  (already submitted)");
        }
        outln!("{line}")?;
    }
    if failed > 0 {
        eprintln!("docket: {failed} of {} documents failed", documents.len());
    }
    Ok(if failed > 0 || errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn is_url(input: &str) -> bool {
    input.starts_with("http://") || input.starts_with("https://")
}

async fn submit_one(client: &Client, args: &SubmitArgs, input: &str) -> Result<Submitted, Failure> {
    let rb = client.request(Method::POST, "/v1/documents");
    let rb = if is_url(input) {
        let mut body = json!({ "url": input });
        if let Some(cb) = &args.callback_url {
            body["callback_url"] = json!(cb);
        }
        if args.reprocess {
            body["reprocess"] = json!(true);
        }
        rb.json(&body)
    } else {
        let path = Path::new(input);
        let bytes =
            std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {input}: {e}")))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".to_owned());
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name));
        if let Some(cb) = &args.callback_url {
            form = form.text("callback_url", cb.clone());
        }
        if args.reprocess {
            form = form.text("reprocess", "true");
        }
        rb.multipart(form)
    };
    let answer = client.json(rb).await?;
    Ok(Submitted {
        label: input.to_owned(),
        created: answer["created"].as_bool().unwrap_or(true),
        document: answer["document"].clone(),
    })
}

/// The document's file name, else what the user typed.
fn name_of(s: &Submitted, doc: &Value) -> String {
    doc["filename"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| s.label.clone())
}

/// Follows every document to its end, then reads each once more for its final state.
async fn wait_all(
    client: &Client,
    args: &SubmitArgs,
    submitted: &[Submitted],
) -> Result<Vec<Value>, Failure> {
    let draw = !args.json && std::io::stdout().is_terminal();
    let bars = MultiProgress::with_draw_target(if draw {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{prefix:30!} [{bar:30}] {pos:>3}% {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let follows = submitted.iter().map(|s| {
        let bar = bars.add(ProgressBar::new(100).with_style(style.clone()));
        bar.set_prefix(name_of(s, &s.document));
        follow(client, s, bar)
    });
    futures::future::try_join_all(follows).await
}

/// Follows one document's event stream until it completes or fails; returns the document.
async fn follow(client: &Client, s: &Submitted, bar: ProgressBar) -> Result<Value, Failure> {
    let id = text(&s.document["id"]);
    // Events of an earlier generation (before a re-process) do not end the wait.
    let generation = s.document["generation"].as_i64().unwrap_or(0);
    let mut quiet_retries = 0u32;
    loop {
        let rb = client
            .request(Method::GET, &format!("/v1/documents/{id}/events"))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        match client.send(rb).await {
            Ok(resp) => {
                let mut parser = super::sse::SseParser::default();
                let mut stream = resp.bytes_stream();
                let mut done = false;
                // A read error ends this stream like its end does: reconnect.
                'stream: while let Some(Ok(chunk)) = stream.next().await {
                    for ev in parser.push(&chunk) {
                        if !matches!(ev.event.as_str(), "progress" | "message") {
                            continue;
                        }
                        let Ok(p) = serde_json::from_str::<Value>(&ev.data) else {
                            continue;
                        };
                        quiet_retries = 0;
                        show(&bar, &p);
                        let status = p["status"].as_str().unwrap_or_default();
                        if matches!(status, "completed" | "failed" | "cancelled")
                            && p["generation"].as_i64().unwrap_or(generation) >= generation
                        {
                            done = true;
                            break 'stream;
                        }
                    }
                }
                if done {
                    break;
                }
            }
            Err(Failure::Unreachable(m)) if quiet_retries >= 5 => {
                return Err(Failure::Unreachable(m));
            }
            Err(Failure::Unreachable(_)) => {}
            Err(f) => return Err(f),
        }
        // The stream broke before the end: back off a little, then read the current state.
        quiet_retries += 1;
        if quiet_retries > 30 {
            return Err(Failure::Api(format!(
                "the event stream of document {id} keeps ending before the document finishes"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250) * quiet_retries.min(8)).await;
    }
    let doc = client
        .json(client.request(Method::GET, &format!("/v1/documents/{id}")))
        .await?;
    if doc["status"] == "completed" {
        bar.set_position(100);
        bar.finish_with_message("completed");
    } else {
        bar.abandon_with_message(format!("{}: {}", text(&doc["status"]), text(&doc["error"])));
    }
    Ok(doc)
}

/// Moves a bar to a progress event. The label is the document's status (`embedding`), which
/// changes with the event; the stage names the job that last ran.
fn show(bar: &ProgressBar, p: &Value) {
    bar.set_position(p["progress"].as_u64().unwrap_or(0).min(100));
    bar.set_message(text(&p["status"]));
}

/// `docket status`: one document's processing state.
pub async fn status(config: Config, args: StatusArgs) -> anyhow::Result<ExitCode> {
    finish(status_of(&config, &args).await)
}

async fn status_of(config: &Config, args: &StatusArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(config, &args.server)?;
    let Some(id) = args.id else {
        return super::reindex::server_status(&client, args.json).await;
    };
    let doc = client
        .json(client.request(Method::GET, &format!("/v1/documents/{id}")))
        .await?;
    if args.json {
        outln!("{}", pretty(&doc))?;
    } else {
        out!("{}", summary(&doc))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A document for people to read.
fn summary(doc: &Value) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "{:<11}{value}", format!("{label}:"));
    };
    row("id", text(&doc["id"]));
    let mut file = doc["filename"].as_str().unwrap_or("(no name)").to_owned();
    let size = HumanBytes(doc["size_bytes"].as_u64().unwrap_or(0));
    match doc["content_type"].as_str() {
        Some(t) => {
            let _ = write!(file, " ({size}, {t})");
        }
        None => {
            let _ = write!(file, " ({size})");
        }
    }
    row("file", file);
    let mut status = format!(
        "{} ({}%",
        text(&doc["status"]),
        doc["progress"].as_i64().unwrap_or(0)
    );
    if let Some(stage) = doc["stage"].as_str() {
        let _ = write!(status, ", stage {stage}");
    }
    status.push(')');
    row("status", status);
    row(
        "chunks",
        format!(
            "{} ({} tokens)",
            doc["chunk_count"].as_i64().unwrap_or(0),
            doc["token_count"].as_i64().unwrap_or(0)
        ),
    );
    if let Some(t) = doc["timings"].as_object().filter(|t| !t.is_empty()) {
        let parts: Vec<String> = t
            .iter()
            .map(|(k, v)| {
                let stage = k.strip_suffix("_ms").unwrap_or(k);
                format!("{stage} {v} ms")
            })
            .collect();
        row("timings", parts.join(", "));
    }
    if let Some(name) = doc["embedder"].as_str() {
        let fingerprint = doc["embedder_fingerprint"]
            .as_str()
            .unwrap_or("not recorded");
        row("embedder", format!("{name} ({fingerprint})"));
    }
    row("created", text(&doc["created_at"]));
    if let Some(at) = doc["completed_at"].as_str() {
        row("completed", at.to_owned());
    }
    if let Some(e) = doc["error"].as_str() {
        let stage = doc["error_stage"].as_str().unwrap_or("?");
        row("error", format!("{e} (stage {stage})"));
    }
    out
}

/// `docket search`: the chunks nearest a query.
pub async fn search(config: Config, args: SearchArgs) -> anyhow::Result<ExitCode> {
    finish(search_for(&config, &args).await)
}

async fn search_for(config: &Config, args: &SearchArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(config, &args.server)?;
    let answer = client
        .json(client.request(Method::POST, "/v1/search").json(&json!({
            "query": args.query,
            "k": args.k,
            "mode": args.mode,
            "filename": args.filename,
            "metadata": args.metadata,
        })))
        .await?;
    if args.json {
        outln!("{}", pretty(&answer))?;
        return Ok(ExitCode::SUCCESS);
    }
    // Documents search could not rank: said on standard error, so the table stays clean.
    if let Some(n) = answer["stale_documents"].as_i64().filter(|n| *n > 0) {
        eprintln!(
            "note: {n} document(s) not searched: another embedder made their vectors; \
             `docket reindex` re-embeds them"
        );
    }
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    if hits.is_empty() {
        outln!("no matches")?;
        return Ok(ExitCode::SUCCESS);
    }
    // The file's name (its id when it has none), in at most 36 columns.
    let file = |hit: &Value| -> String {
        let name = hit["filename"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| text(&hit["chunk"]["document_id"]));
        console::truncate_str(&name, 36, "…").into_owned()
    };
    const HEAD: usize = 4 + 2 + 6 + 2 + 36 + 2;
    let width = if std::io::stdout().is_terminal() {
        console::Term::stdout()
            .size_checked()
            .map(|(_, cols)| usize::from(cols).saturating_sub(HEAD).max(20))
            .unwrap_or(100)
    } else {
        100
    };
    outln!("{:<4}  {:<6}  {:<36}  TEXT", "RANK", "SCORE", "FILE")?;
    for (i, hit) in hits.iter().enumerate() {
        let chunk = &hit["chunk"];
        let snippet = snippet(chunk["text"].as_str().unwrap_or_default(), width);
        outln!(
            "{:<4}  {:<6.4}  {:<36}  {snippet}",
            i + 1,
            hit["score"].as_f64().unwrap_or(0.0),
            file(hit),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The text on one line, cut to `width` columns.
fn snippet(text: &str, width: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    console::truncate_str(&line, width, "…").into_owned()
}

/// A JSON string's contents, or the value as JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        assert_eq!(default_server("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(default_server("[::]:9000"), "http://[::1]:9000");
        assert_eq!(default_server("127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn snippets_are_one_line_and_bounded() {
        assert_eq!(snippet("a\n  b\tc", 100), "a b c");
        let s = snippet(&"word ".repeat(100), 20);
        assert!(console::measure_text_width(&s) <= 20, "{s}");
        assert!(s.ends_with('…'));
    }
}
