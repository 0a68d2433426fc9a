//! Reliability drill "provider faults": the full pipeline embeds through the `openai`
//! provider against an OpenAI-compatible endpoint on loopback that fails on purpose.
//!
//! The endpoint answers `POST /v1/embeddings` with deterministic vectors (the hashing
//! embedder's, so search still works), except that a seeded generator picks
//! [`FAULT_RATE`] of the requests to fail, and the failing ones take turns at: a `500`, a
//! `429` with `Retry-After: 1`, an answer slower than the client's timeout, a malformed JSON
//! body, and a well-formed body with the wrong number of vectors (so every kind is met). For a moment in the middle of the run every request fails (an
//! outage), which must open the circuit breaker. The endpoint logs every request with its
//! arrival time and what it answered; the drill then checks that
//!
//! 1. every document completes, with exactly the chunks the chunker makes of it, each with
//!    one stored vector, and that vector is the right one for its text;
//! 2. after a `429`, no request reaches the endpoint before its `Retry-After` has passed;
//! 3. the breaker opens during the outage, no request reaches the endpoint while it is open,
//!    and it closes again once the endpoint recovers;
//! 4. no job is dead-lettered, no embed job spends more than its attempts, and the number of
//!    requests stays within a bound derived from the work (see [`request_bound`]).
//!
//! It prints one JSON line of figures (run with `--nocapture` to see it).
//!
//! A second drill, [`long_outage`], fails every request from the start for many cooldowns
//! before the endpoint recovers: only the calls made before the breaker first opened may
//! spend job attempts (an open breaker holds the work back), so nothing is dead-lettered and
//! every document completes. It prints its own JSON line.
//!
//! The queue's retry backoff (60 s after a failed attempt) would dominate the run, so the
//! runtime gets a clock that skips ahead while the queue has nothing to do but wait for a
//! backoff ([`WarpClock`]). The provider's own waits (`Retry-After`, the breaker's cooldown,
//! the request timeout) run in real time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use docket_conformance::both_backends;
use docket_conformance::harness::TestDb;
use docket_core::*;
use docket_embed::Embedder;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_embed::openai::{BreakerState, OpenAiConfig, OpenAiEmbedder};
use docket_parse::Limits;
use docket_pipeline::blob::ObjectStoreBlobs;
use docket_pipeline::chunk::Chunker;
use docket_pipeline::config::{ChunkConfig, StagesConfig};
use docket_pipeline::notify::Notifier;
use docket_pipeline::progress::ProgressHub;
use docket_pipeline::*;
use docket_queue::{Runtime, RuntimeConfig, RuntimeHandle, Workers};
use serde::Deserialize;

/// Share of requests that fail outside the outage.
const FAULT_RATE: f64 = 0.30;
/// Seeds the endpoint's fault generator: the n-th request's fate is fixed by it.
const SEED: u64 = 0x0D0C_4E7F_A017_5EED;
const DOCUMENTS: usize = 40;
const DIMENSIONS: usize = 128;
/// The provider's request timeout; the slow fault answers well after it.
const TIMEOUT_MS: u64 = 600;
const SLOW_MS: u64 = 1_500;
const MAX_RETRIES: u32 = 2;
const BREAKER_THRESHOLD: u32 = 3;
const BREAKER_COOLDOWN: Duration = Duration::from_millis(1_500);
const MAX_BATCH: usize = 8;
const EMBED_PAGE: usize = 4;
const RETRY_AFTER: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// The endpoint.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    ServerError,
    RateLimited,
    Slow,
    Malformed,
    WrongShape,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ServerError => "500",
            Outcome::RateLimited => "429",
            Outcome::Slow => "timeout",
            Outcome::Malformed => "malformed_json",
            Outcome::WrongShape => "wrong_vector_count",
        }
    }
}

const FAULTS: [Outcome; 5] = [
    Outcome::ServerError,
    Outcome::RateLimited,
    Outcome::Slow,
    Outcome::Malformed,
    Outcome::WrongShape,
];
/// During the outage: every failure the breaker counts (a `429` is not one).
const OUTAGE_FAULTS: [Outcome; 4] = [
    Outcome::ServerError,
    Outcome::Slow,
    Outcome::Malformed,
    Outcome::WrongShape,
];

const HEALTHY: u8 = 0;
const FAULTY: u8 = 1;
const OUTAGE: u8 = 2;

/// SplitMix64: small, seeded, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone)]
struct Logged {
    at: Instant,
    outcome: Outcome,
    mode: u8,
    inputs: usize,
}

struct Endpoint {
    mode: AtomicU8,
    rng: Mutex<Rng>,
    /// Which fault comes next: a failing request serves `FAULTS[faults % FAULTS.len()]`, so
    /// every kind is met even though *whether* a request fails is random.
    faults: AtomicUsize,
    log: Mutex<Vec<Logged>>,
    vectors: HashingEmbedder,
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: String,
    input: Vec<String>,
}

impl Endpoint {
    fn set_mode(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

async fn embeddings(
    State(ep): State<Arc<Endpoint>>,
    axum::Json(req): axum::Json<EmbeddingsRequest>,
) -> Response {
    let outcome = {
        // Drawn and logged under one lock: the log is in arrival order.
        let mut rng = ep.rng.lock().unwrap();
        let mode = ep.mode.load(Ordering::SeqCst);
        let outcome = match mode {
            FAULTY if rng.unit() < FAULT_RATE => {
                FAULTS[ep.faults.fetch_add(1, Ordering::Relaxed) % FAULTS.len()]
            }
            OUTAGE => OUTAGE_FAULTS[rng.below(OUTAGE_FAULTS.len())],
            _ => Outcome::Ok,
        };
        ep.log.lock().unwrap().push(Logged {
            at: Instant::now(),
            outcome,
            mode,
            inputs: req.input.len(),
        });
        outcome
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    let body = |count: usize| {
        let data: Vec<serde_json::Value> = req
            .input
            .iter()
            .cycle()
            .take(count)
            .enumerate()
            .map(|(index, text)| {
                serde_json::json!({
                    "object": "embedding",
                    "index": index,
                    "embedding": ep.vectors.embed_one(text),
                })
            })
            .collect();
        let tokens: usize = req.input.iter().map(|t| t.split_whitespace().count()).sum();
        serde_json::json!({
            "object": "list",
            "data": data,
            "model": req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })
        .to_string()
    };
    let n = req.input.len();
    match outcome {
        Outcome::Ok => (StatusCode::OK, json, body(n)).into_response(),
        Outcome::Slow => {
            tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
            (StatusCode::OK, json, body(n)).into_response()
        }
        Outcome::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json,
            r#"{"error":{"message":"the model server fell over","type":"server_error"}}"#,
        )
            .into_response(),
        Outcome::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "1"),
            ],
            r#"{"error":{"message":"rate limit reached","type":"requests"}}"#,
        )
            .into_response(),
        Outcome::Malformed => (
            StatusCode::OK,
            json,
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.125,"#,
        )
            .into_response(),
        Outcome::WrongShape => {
            let wrong = if n > 1 { n - 1 } else { n + 1 };
            (StatusCode::OK, json, body(wrong)).into_response()
        }
    }
}

async fn start_endpoint() -> (Arc<Endpoint>, String) {
    let ep = Arc::new(Endpoint {
        mode: AtomicU8::new(FAULTY),
        rng: Mutex::new(Rng(SEED)),
        faults: AtomicUsize::new(0),
        log: Mutex::new(Vec::new()),
        vectors: HashingEmbedder::new(hashing_config()),
    });
    let app = axum::Router::new()
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .with_state(ep.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (ep, format!("http://{addr}/v1"))
}

fn hashing_config() -> HashingConfig {
    HashingConfig {
        dimensions: DIMENSIONS,
        ..HashingConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Observers.

/// The wall clock plus an offset that [`warp`] moves forward while the queue only waits for
/// retry backoffs.
#[derive(Debug, Clone, Default)]
struct WarpClock(Arc<AtomicI64>);

impl WarpClock {
    fn skipped(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::SeqCst) as u64)
    }
}

impl Clock for WarpClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.0.load(Ordering::SeqCst))
    }

    fn now_for_db(&self) -> Option<DateTime<Utc>> {
        Some(self.now())
    }
}

/// While no stage job runs or is due and the next one is due more than two seconds away
/// (a retry backoff, not a snooze), moves the clock to it.
async fn warp<D: Driver>(driver: D, clock: WarpClock, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(mut c) = driver.conn().await else {
            continue;
        };
        let Ok(live) = c
            .job_list(JobListParams {
                states: vec![JobState::Queued, JobState::Running, JobState::Retrying],
                job_types: STAGE_KINDS.iter().map(|k| k.to_string()).collect(),
                limit: 1000,
                ..Default::default()
            })
            .await
        else {
            continue;
        };
        drop(c);
        let now = clock.now();
        if live.iter().any(|j| j.status == JobState::Running) {
            continue;
        }
        let Some(next) = live.iter().map(|j| j.run_at).min() else {
            continue;
        };
        let ahead = (next - now).num_milliseconds();
        if ahead > 2_000 {
            clock.0.fetch_add(ahead + 10, Ordering::SeqCst);
        }
    }
}

/// Breaker openings seen by polling: the breaker opened after `.0` and before `.1`.
#[derive(Debug, Default)]
struct BreakerLog {
    openings: Vec<(Instant, Instant)>,
    closings: Vec<Instant>,
}

fn watch_breaker(
    embedder: Arc<OpenAiEmbedder>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<BreakerLog> {
    std::thread::spawn(move || {
        let mut log = BreakerLog::default();
        let mut prev = BreakerState::Closed;
        let mut last_not_open = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let before = Instant::now();
            let state = embedder.breaker_state();
            let after = Instant::now();
            match state {
                // Not open when read at or after `before`: any opening comes later.
                BreakerState::Open if prev != BreakerState::Open => {
                    log.openings.push((last_not_open, after));
                }
                BreakerState::Open => {}
                BreakerState::Closed | BreakerState::HalfOpen => {
                    last_not_open = before;
                    if state == BreakerState::Closed && prev != BreakerState::Closed {
                        log.closings.push(after);
                    }
                }
            }
            prev = state;
            std::thread::sleep(Duration::from_millis(1));
        }
        log
    })
}

// ---------------------------------------------------------------------------------------
// The documents.

/// A small Markdown or text document with a sentence only it contains.
fn document(i: usize) -> (String, String, String) {
    const TOPICS: [&str; 8] = [
        "tide tables and harbour pilots",
        "sourdough starters and rye flour",
        "glacier melt and river gauges",
        "beekeeping through a wet spring",
        "railway signalling in fog",
        "orchard grafting and rootstock",
        "lighthouse lenses and their keepers",
        "salt marsh birds at low water",
    ];
    const FILLER: [&str; 6] = [
        "The notes were written up the same evening and checked against the log.",
        "Nobody expected the second week to be as busy as the first one.",
        "A short list of open questions closes this part of the record.",
        "Measurements were repeated twice where the first reading looked odd.",
        "The volunteers rotated every few hours so nobody worked alone.",
        "Copies of every form went to the archive at the end of the month.",
    ];
    let topic = TOPICS[i % TOPICS.len()];
    let marker = format!("kestrel{i}quill");
    let sentence = format!(
        "Station {marker} logged {} sightings near the {} pier at dawn.",
        17 + i * 3,
        ["north", "south", "east", "west"][i % 4]
    );
    let paragraphs = 2 + i % 6;
    let mut text = String::new();
    let markdown = i.is_multiple_of(2);
    if markdown {
        text.push_str(&format!("# Field report {i}: {topic}\n\n"));
    } else {
        text.push_str(&format!("Field report {i}: {topic}\n\n"));
    }
    text.push_str(&sentence);
    text.push_str("\n\n");
    for p in 0..paragraphs {
        if markdown && p % 2 == 1 {
            text.push_str(&format!("## Day {}\n\n", p + 1));
        }
        for s in 0..3 {
            text.push_str(FILLER[(i + p * 3 + s) % FILLER.len()]);
            text.push(' ');
        }
        text.push_str(&format!("Entry {p} of report {i} is about {topic}.\n\n"));
    }
    let name = format!("report-{i}.{}", if markdown { "md" } else { "txt" });
    (name, text, sentence)
}

/// How many chunks the chunk stage makes of `bytes`, computed here independently.
fn expected_chunks(chunker: &Chunker, name: &str, bytes: &[u8]) -> usize {
    let format = docket_parse::detect(bytes, Some(name), None).unwrap();
    let parsed = docket_parse::parse(bytes, format, &Limits::default()).unwrap();
    chunker.chunk(&parsed).len()
}

/// The most requests the drill may make.
///
/// Without faults, an embed job sends its chunks `EMBED_PAGE` at a time and the batcher
/// never turns one page into more than one request (`EMBED_PAGE <= MAX_BATCH`; merging pages
/// only saves requests), so `pages` requests suffice. With each request failing
/// independently at `FAULT_RATE`, a page needs `1 / (1 - FAULT_RATE)` requests on average
/// (about 1.43): twice that is far above anything chance produces over dozens of pages.
/// The outage adds at most `BREAKER_THRESHOLD` calls of `MAX_RETRIES + 1` requests each,
/// since the breaker then refuses calls.
fn request_bound(pages: usize) -> usize {
    let expected = (pages as f64 / (1.0 - FAULT_RATE)).ceil() as usize;
    2 * expected + outage_bound()
}

fn outage_bound() -> usize {
    (BREAKER_THRESHOLD * (MAX_RETRIES + 1)) as usize
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    tokio::time::timeout(limit, async {
        while !done().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn statuses<D: Driver>(p: &Pipeline<D>, ids: &[uuid::Uuid]) -> Vec<DocumentRow> {
    let mut c = p.driver().conn().await.unwrap();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(c.document_get(*id).await.unwrap().expect("document exists"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The rig: a pipeline embedding through the endpoint, with its queue runtime.

/// Documents submitted to a [`Rig`], and what each must end up with.
struct Submitted {
    ids: Vec<uuid::Uuid>,
    /// Chunks per document, in `ids` order.
    expected: Vec<usize>,
    sentences: Vec<String>,
}

impl Submitted {
    fn total_chunks(&self) -> usize {
        self.expected.iter().sum()
    }

    /// Embed requests the documents need without faults (see [`request_bound`]).
    fn pages(&self) -> usize {
        self.expected.iter().map(|n| n.div_ceil(EMBED_PAGE)).sum()
    }
}

/// The pipeline, the endpoint it embeds through, and what watches them.
struct Rig<T: TestDb> {
    db: T,
    endpoint: Arc<Endpoint>,
    openai: Arc<OpenAiEmbedder>,
    p: Pipeline<T::D>,
    chunker: Chunker,
    clock: WarpClock,
    max_attempts: i32,
    stop: Arc<AtomicBool>,
    breaker: Option<std::thread::JoinHandle<BreakerLog>>,
    warper: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<RuntimeHandle>,
    _blobs: tempfile::TempDir,
}

/// Figures about the embed jobs, once every stage job has completed.
struct JobFigures {
    /// Attempts that failed and were retried (each spent one of the job's attempts).
    retries: usize,
    /// Attempts that were held back without spending one.
    snoozes: usize,
    max_attempts_seen: i32,
}

impl<T: TestDb> Rig<T> {
    /// Starts everything, with the endpoint in `mode`.
    async fn start(db: T, mode: u8) -> Self {
        let (endpoint, base_url) = start_endpoint().await;
        endpoint.set_mode(mode);
        let openai = Arc::new(
            OpenAiEmbedder::new(OpenAiConfig {
                max_batch: MAX_BATCH,
                timeout_ms: TIMEOUT_MS,
                max_retries: MAX_RETRIES,
                breaker_threshold: BREAKER_THRESHOLD,
                breaker_cooldown_ms: BREAKER_COOLDOWN.as_millis() as u64,
                ..OpenAiConfig::new(base_url, "fault-embed", DIMENSIONS)
            })
            .unwrap(),
        );
        let embedder: Arc<dyn Embedder> = openai.clone();
        let blobs = tempfile::tempdir().unwrap();
        let stages = StagesConfig {
            embed_page: EMBED_PAGE,
            embed_concurrency: 1,
            ..StagesConfig::default()
        };
        let max_attempts = stages.max_attempts;
        let p = Pipeline::new(PipelineParts {
            driver: db.driver().clone(),
            blobs: Arc::new(ObjectStoreBlobs::local(blobs.path()).unwrap()),
            embedder: embedder.clone(),
            parse: ParseSettings {
                limits: Limits::default(),
                isolation: None,
            },
            chunk: ChunkConfig {
                max_tokens: 64,
                overlap_tokens: 8,
            },
            stages,
            max_file_bytes: 1024 * 1024,
            notifier: Notifier::none(),
            progress: ProgressHub::default(),
        })
        .unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let breaker = watch_breaker(openai.clone(), stop.clone());
        let clock = WarpClock::default();
        let warper = tokio::spawn(warp(db.driver().clone(), clock.clone(), stop.clone()));
        let mut workers = Workers::new();
        p.register(&mut workers);
        let runtime = Runtime::start(
            db.driver().clone(),
            workers,
            RuntimeConfig {
                worker_id: Some(format!("drill-{}", uuid::Uuid::new_v4().simple())),
                poll_interval: Duration::from_millis(50),
                heartbeat_interval: Duration::from_millis(500),
                shutdown_grace: Duration::from_millis(500),
                maintenance: None,
                ..Default::default()
            },
            Arc::new(clock.clone()),
        )
        .unwrap();
        Rig {
            db,
            endpoint,
            openai,
            p,
            chunker: Chunker::new(embedder, 64, 8).unwrap(),
            clock,
            max_attempts,
            stop,
            breaker: Some(breaker),
            warper: Some(warper),
            runtime: Some(runtime),
            _blobs: blobs,
        }
    }

    /// Submits `document(i)` for every `i` in `range`, working out independently how many
    /// chunks each must end up with.
    async fn submit(&self, range: std::ops::Range<usize>) -> Submitted {
        let mut out = Submitted {
            ids: Vec::new(),
            expected: Vec::new(),
            sentences: Vec::new(),
        };
        for i in range {
            let (name, text, sentence) = document(i);
            out.expected
                .push(expected_chunks(&self.chunker, &name, text.as_bytes()));
            let sub = self
                .p
                .submit(NewDocument {
                    bytes: Bytes::from(text),
                    filename: Some(name),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(sub.created);
            out.ids.push(sub.document.id);
            out.sentences.push(sentence);
        }
        out
    }

    async fn completed(&self, docs: &Submitted) -> usize {
        statuses(&self.p, &docs.ids)
            .await
            .iter()
            .filter(|d| d.status == DocumentStatus::Completed)
            .count()
    }

    async fn wait_terminal(&self, docs: &Submitted, limit: Duration) {
        wait_for("every document", limit, || async {
            statuses(&self.p, &docs.ids)
                .await
                .iter()
                .all(|d| d.status.is_terminal())
        })
        .await;
    }

    /// Stops the runtime and the watchers; what the breaker watcher saw.
    async fn halt(&mut self) -> BreakerLog {
        self.stop.store(true, Ordering::SeqCst);
        let breaker = self.breaker.take().unwrap().join().unwrap();
        self.warper.take().unwrap().await.unwrap();
        self.runtime.take().unwrap().shutdown().await;
        breaker
    }

    /// (1) Every document completed with exactly its chunks, each embedded once, correctly;
    /// returns the stored vectors.
    async fn check_documents(&self, docs: &Submitted) -> usize {
        let p = &self.p;
        let rows = statuses(p, &docs.ids).await;
        let reference = HashingEmbedder::new(hashing_config());
        let mut texts = HashMap::new();
        for (i, d) in rows.iter().enumerate() {
            let want = docs.expected[i];
            assert_eq!(
                d.status,
                DocumentStatus::Completed,
                "document {i}: {:?} at {:?}",
                d.error,
                d.error_stage
            );
            assert_eq!(d.chunk_count as usize, want, "document {i}");
            let chunks = {
                let mut c = p.driver().conn().await.unwrap();
                c.chunk_list(ChunkListParams {
                    document_id: d.id,
                    generation: None,
                    limit: 10_000,
                    offset: 0,
                })
                .await
                .unwrap()
            };
            assert_eq!(chunks.len(), want, "document {i}");
            let indices: HashSet<i32> = chunks.iter().map(|c| c.chunk_index).collect();
            assert_eq!(
                indices,
                (0..want as i32).collect::<HashSet<i32>>(),
                "document {i}: chunk indices"
            );
            assert!(chunks.iter().all(|c| c.has_embedding && c.generation == 1));
            for c in chunks {
                texts.insert(c.id, c.text);
            }
        }
        let total_chunks = docs.total_chunks();
        let mut vectors = Vec::new();
        let mut after_id = 0;
        loop {
            let page = {
                let mut c = p.driver().conn().await.unwrap();
                c.chunk_vectors_page(&ChunkVectorPageParams {
                    document_ids: Some(docs.ids.clone()),
                    // Every vector is recorded as the running embedder's.
                    embedder_fingerprint: Some(p.embedder().identity().fingerprint.clone()),
                    after_id,
                    limit: 1000,
                    chunk_ids: None,
                })
                .await
                .unwrap()
            };
            let Some(last) = page.last() else { break };
            after_id = last.id;
            vectors.extend(page);
        }
        assert_eq!(vectors.len(), total_chunks, "stored vectors");
        assert_eq!(
            vectors.iter().map(|v| v.id).collect::<HashSet<_>>().len(),
            total_chunks,
            "one vector per chunk"
        );
        for v in &vectors {
            let want = reference.embed_one(&texts[&v.id]);
            let cos: f32 = want.iter().zip(&v.embedding).map(|(a, b)| a * b).sum();
            assert!(
                cos > 0.999,
                "chunk {} holds another text's vector ({cos})",
                v.id
            );
        }
        assert_eq!(
            self.db.query_rows("SELECT 1 FROM document_chunks").await,
            total_chunks
        );
        assert_eq!(
            self.db
                .query_rows("SELECT 1 FROM document_chunks WHERE embedding IS NOT NULL")
                .await,
            total_chunks
        );
        vectors.len()
    }

    /// (4, in part) Every stage job completed, none was dead-lettered, and no embed job spent
    /// more than its attempts.
    async fn check_jobs(&self, documents: usize) -> JobFigures {
        let mut c = self.p.driver().conn().await.unwrap();
        let jobs = c
            .job_list(JobListParams {
                job_types: STAGE_KINDS.iter().map(|k| k.to_string()).collect(),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            jobs.iter().all(|j| j.status == JobState::Completed),
            "{:?}",
            jobs.iter()
                .filter(|j| j.status != JobState::Completed)
                .collect::<Vec<_>>()
        );
        let embed_jobs: Vec<&JobRow> = jobs
            .iter()
            .filter(|j| j.job_type == "docket.embed")
            .collect();
        assert!(embed_jobs.len() >= documents);
        let max_attempts_seen = embed_jobs.iter().map(|j| j.attempts).max().unwrap_or(0);
        assert!(max_attempts_seen <= self.max_attempts);
        let (mut retries, mut snoozes) = (0, 0);
        for j in &embed_jobs {
            for a in c.job_attempt_list(j.id).await.unwrap() {
                match a.outcome {
                    AttemptOutcome::Retried => retries += 1,
                    AttemptOutcome::Released
                        if a.error.as_deref().is_some_and(|e| e.contains("snoozed")) =>
                    {
                        snoozes += 1
                    }
                    AttemptOutcome::Failed => panic!("embed job {} dead-lettered", j.id),
                    _ => {}
                }
            }
        }
        JobFigures {
            retries,
            snoozes,
            max_attempts_seen,
        }
    }
}

/// (3, in part) No request reached the endpoint while the breaker was open; the quiet gap
/// around each opening, as the endpoint saw it.
fn check_breaker_windows(breaker: &BreakerLog, log: &[Logged]) -> Vec<u64> {
    let mut quiet = Vec::new();
    for &(not_open, open) in &breaker.openings {
        // The breaker opened in (not_open, open], so it was open over [open, not_open + cooldown).
        let until = not_open + BREAKER_COOLDOWN;
        assert!(
            until > open + BREAKER_COOLDOWN / 2,
            "the breaker watcher was starved ({:?} between polls)",
            open - not_open
        );
        let during: Vec<_> = log
            .iter()
            .filter(|r| r.at >= open && r.at < until)
            .collect();
        assert!(
            during.is_empty(),
            "{} requests reached the endpoint while the breaker was open: {during:?}",
            during.len()
        );
        let last_before = log.iter().rev().find(|r| r.at < open).map(|r| r.at);
        let first_after = log.iter().find(|r| r.at >= until).map(|r| r.at);
        if let (Some(a), Some(b)) = (last_before, first_after) {
            quiet.push((b - a).as_millis() as u64);
        }
    }
    quiet
}

// ---------------------------------------------------------------------------------------
// The drill.

#[both_backends]
async fn provider_faults(db: impl TestDb) {
    let started = Instant::now();
    let mut rig = Rig::start(db, FAULTY).await;
    let docs = rig.submit(0..DOCUMENTS).await;
    let (endpoint, openai) = (rig.endpoint.clone(), rig.openai.clone());

    // A quarter done under random faults, then an outage until the breaker opens; it ends
    // half-way through the cooldown, so the half-open trial meets the faulty endpoint again.
    wait_for(
        "a quarter of the documents",
        Duration::from_secs(90),
        || async { rig.completed(&docs).await >= DOCUMENTS / 4 },
    )
    .await;
    let opens_before = openai.stats().breaker_opens;
    endpoint.set_mode(OUTAGE);
    let outage_started = Instant::now();
    wait_for("the breaker to open", Duration::from_secs(60), || async {
        openai.stats().breaker_opens > opens_before
    })
    .await;
    let outage_took = outage_started.elapsed();
    tokio::time::sleep(BREAKER_COOLDOWN / 2).await;
    endpoint.set_mode(FAULTY);

    rig.wait_terminal(&docs, Duration::from_secs(180)).await;
    let elapsed = started.elapsed();
    let breaker = rig.halt().await;
    let log = endpoint.log();
    let stats = openai.stats();

    // (1)
    let vectors_stored = rig.check_documents(&docs).await;

    // Every kind of fault was met, and the client told them apart.
    let mut by_outcome: BTreeMap<Outcome, usize> = BTreeMap::new();
    for r in &log {
        *by_outcome.entry(r.outcome).or_default() += 1;
    }
    let count = |o: Outcome| by_outcome.get(&o).copied().unwrap_or(0);
    for o in FAULTS {
        assert!(count(o) > 0, "no {} was served: {by_outcome:?}", o.name());
    }
    assert_eq!(stats.requests as usize, log.len(), "{stats:?}");
    assert_eq!(stats.rate_limited as usize, count(Outcome::RateLimited));
    assert_eq!(stats.server_errors as usize, count(Outcome::ServerError));
    assert_eq!(stats.transport_errors as usize, count(Outcome::Slow));
    assert_eq!(
        stats.malformed as usize,
        count(Outcome::Malformed) + count(Outcome::WrongShape)
    );
    assert_eq!(stats.successes as usize, count(Outcome::Ok));
    assert_eq!(stats.permanent_errors, 0);

    // (2) After a 429, nothing reached the endpoint before its Retry-After had passed.
    let mut pauses = Vec::new();
    for w in log.windows(2) {
        if w[0].outcome == Outcome::RateLimited {
            let gap = w[1].at - w[0].at;
            assert!(
                gap >= RETRY_AFTER,
                "a request came {gap:?} after a 429 asking for {RETRY_AFTER:?}"
            );
            pauses.push(gap.as_millis() as u64);
        }
    }

    // (3) The breaker opened, nothing reached the endpoint while it was open, and it closed.
    assert!(!breaker.openings.is_empty(), "the breaker never opened");
    assert!(
        stats.breaker_opens >= 1 && stats.breaker_rejections > 0,
        "{stats:?}"
    );
    let quiet = check_breaker_windows(&breaker, &log);
    let (_, last_open) = *breaker.openings.last().unwrap();
    assert!(
        breaker.closings.iter().any(|&c| c > last_open),
        "the breaker never closed after opening"
    );
    assert_eq!(openai.breaker_state(), BreakerState::Closed);
    assert!(
        log.iter()
            .any(|r| r.at > last_open && r.outcome == Outcome::Ok),
        "no request succeeded after the breaker opened"
    );

    // (4) Attempts and requests within bounds.
    let jobs = rig.check_jobs(DOCUMENTS).await;
    let outage_requests = log.iter().filter(|r| r.mode == OUTAGE).count();
    assert!(
        outage_requests <= outage_bound(),
        "{outage_requests} requests during the outage"
    );
    let pages = docs.pages();
    let bound = request_bound(pages);
    assert!(
        log.len() <= bound,
        "{} requests for {pages} pages (bound {bound})",
        log.len()
    );
    let inputs_sent: usize = log.iter().map(|r| r.inputs).sum();

    // Search still works: a document's own sentence finds it first.
    endpoint.set_mode(HEALTHY);
    for i in [0, DOCUMENTS / 2, DOCUMENTS - 1] {
        let hits = rig.p.search(&docs.sentences[i], 3, None).await.unwrap();
        assert_eq!(
            hits[0].chunk.document_id, docs.ids[i],
            "{}",
            docs.sentences[i]
        );
    }

    let summary = serde_json::json!({
        "drill": "provider_faults",
        "backend": rig.db.backend(),
        "documents": DOCUMENTS,
        "chunks": docs.total_chunks(),
        "vectors_stored": vectors_stored,
        "fault_rate": FAULT_RATE,
        "requests": log.len(),
        "requests_by_outcome": by_outcome
            .iter()
            .map(|(o, n)| (o.name().to_owned(), serde_json::json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "inputs_sent": inputs_sent,
        "request_pages": pages,
        "request_bound": bound,
        "outage_requests": outage_requests,
        "outage_to_open_ms": outage_took.as_millis() as u64,
        "job_retries": jobs.retries,
        "job_snoozes": jobs.snoozes,
        "breaker_opens": stats.breaker_opens,
        "breaker_rejections": stats.breaker_rejections,
        "breaker_quiet_gaps_ms": quiet,
        "retry_after_pauses_ms": pauses,
        "max_attempts_seen": jobs.max_attempts_seen,
        "max_attempts": rig.max_attempts,
        "dead_lettered": 0,
        "queue_backoff_skipped_s": rig.clock.skipped().as_secs(),
        "elapsed_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{summary}");
}

/// Documents in the long outage.
const LONG_OUTAGE_DOCUMENTS: usize = 3;
/// Half-open trials that must fail before the long outage ends: it lasts well over this many
/// cooldowns.
const LONG_OUTAGE_TRIALS: u64 = 6;

/// A long outage: every request fails from the start until the breaker has opened, and
/// reopened after [`LONG_OUTAGE_TRIALS`] failed half-open trials, then the endpoint recovers.
///
/// A provider that is down is no reason to give up on documents: only the calls that fail
/// while the breaker still believes the provider up spend job attempts (the one that opens
/// it, and every failed trial, hold the work back instead), so nothing is dead-lettered and
/// every document completes after the recovery, however long the outage.
#[both_backends]
async fn long_outage(db: impl TestDb) {
    let started = Instant::now();
    let mut rig = Rig::start(db, OUTAGE).await;
    let docs = rig.submit(0..LONG_OUTAGE_DOCUMENTS).await;
    let (endpoint, openai) = (rig.endpoint.clone(), rig.openai.clone());

    wait_for(
        "the failed half-open trials",
        Duration::from_secs(60),
        || async { openai.stats().breaker_opens > LONG_OUTAGE_TRIALS },
    )
    .await;
    let outage = started.elapsed();
    assert_eq!(
        rig.completed(&docs).await,
        0,
        "nothing embeds during the outage"
    );
    endpoint.set_mode(HEALTHY);
    rig.wait_terminal(&docs, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let breaker = rig.halt().await;
    let log = endpoint.log();
    let stats = openai.stats();

    let vectors_stored = rig.check_documents(&docs).await;
    let jobs = rig.check_jobs(LONG_OUTAGE_DOCUMENTS).await;
    // Only the calls before the breaker first opened spent attempts, each for at most every
    // document; the endpoint never failed after the outage.
    let spendable = (BREAKER_THRESHOLD as usize - 1) * LONG_OUTAGE_DOCUMENTS;
    assert!(
        jobs.retries <= spendable,
        "{} attempts spent during the outage (at most {spendable} may be)",
        jobs.retries
    );
    assert!(jobs.max_attempts_seen < BREAKER_THRESHOLD as i32 + 1);
    let quiet = check_breaker_windows(&breaker, &log);
    assert!(
        breaker.openings.len() as u64 > LONG_OUTAGE_TRIALS / 2,
        "{breaker:?}"
    );
    assert_eq!(openai.breaker_state(), BreakerState::Closed);
    let outage_requests = log.iter().filter(|r| r.mode == OUTAGE).count();
    // The calls that opened the breaker, then one trial call per opening.
    let bound = outage_bound() + stats.breaker_opens as usize * (MAX_RETRIES as usize + 1);
    assert!(
        outage_requests <= bound,
        "{outage_requests} requests during the outage (bound {bound})"
    );

    let summary = serde_json::json!({
        "drill": "provider_faults.long_outage",
        "backend": rig.db.backend(),
        "documents": LONG_OUTAGE_DOCUMENTS,
        "chunks": docs.total_chunks(),
        "vectors_stored": vectors_stored,
        "outage_ms": outage.as_millis() as u64,
        "outage_cooldowns": outage.as_millis() as u64 / BREAKER_COOLDOWN.as_millis() as u64,
        "outage_requests": outage_requests,
        "requests": log.len(),
        "breaker_opens": stats.breaker_opens,
        "breaker_rejections": stats.breaker_rejections,
        "breaker_quiet_gaps_ms": quiet,
        "job_retries": jobs.retries,
        "job_snoozes": jobs.snoozes,
        "max_attempts_seen": jobs.max_attempts_seen,
        "max_attempts": rig.max_attempts,
        "dead_lettered": 0,
        "queue_backoff_skipped_s": rig.clock.skipped().as_secs(),
        "elapsed_s": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
    });
    println!("{summary}");
}
