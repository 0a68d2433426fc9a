//! The `openai` provider against a loopback OpenAI-compatible `/v1/embeddings` server with
//! fault injection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use docket_embed::openai::{BreakerState, OpenAiConfig, OpenAiEmbedder};
use docket_embed::{EmbedConfig, EmbedError, Embedder};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789";
const MODEL: &str = "test-embed-small";
const DIMS: usize = 8;

/// What the server does instead of answering normally.
#[derive(Debug, Clone)]
enum Fault {
    /// This status with an OpenAI-style error body.
    Status(u16),
    /// `429` with this `Retry-After` (none when `None`).
    RateLimited(Option<RetryAfter>),
    /// `200` with a truncated JSON body.
    Malformed,
    /// `200` with one embedding missing.
    MissingItem,
    /// Waits this long, then answers normally.
    Hang(Duration),
    /// Answers with vectors of this length.
    Dims(usize),
}

#[derive(Debug, Clone)]
enum RetryAfter {
    Seconds(&'static str),
    /// An HTTP date this far in the future, formatted when the response is sent.
    DateIn(Duration),
}

#[derive(Debug, Clone)]
struct Seen {
    inputs: Vec<String>,
    body: Value,
    at: Instant,
}

#[derive(Default)]
struct Mock {
    /// Used up one per request, before `always`.
    faults: Mutex<VecDeque<Fault>>,
    always: Mutex<Option<Fault>>,
    seen: Mutex<Vec<Seen>>,
}

struct Server {
    addr: SocketAddr,
    mock: Arc<Mock>,
}

impl Server {
    async fn start() -> Server {
        let mock = Arc::new(Mock::default());
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, mock }
    }

    fn config(&self) -> OpenAiConfig {
        let mut c = OpenAiConfig::new(format!("http://{}/v1/", self.addr), MODEL, DIMS);
        c.api_key = Some(KEY.to_owned());
        c.timeout_ms = 3_000;
        c
    }

    fn embedder(&self, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiEmbedder {
        let mut c = self.config();
        tweak(&mut c);
        OpenAiEmbedder::new(c).unwrap()
    }

    fn push(&self, fault: Fault, times: usize) {
        let mut faults = self.mock.faults.lock().unwrap();
        faults.extend(std::iter::repeat_n(fault, times));
    }

    fn always(&self, fault: Option<Fault>) {
        *self.mock.always.lock().unwrap() = fault;
    }

    fn seen(&self) -> Vec<Seen> {
        self.mock.seen.lock().unwrap().clone()
    }

    fn hits(&self) -> usize {
        self.mock.seen.lock().unwrap().len()
    }

    fn batch_sizes(&self) -> Vec<usize> {
        self.seen().iter().map(|s| s.inputs.len()).collect()
    }
}

fn openai_error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": "invalid_request_error", "code": null}}),
        ),
    )
        .into_response()
}

/// The unnormalised vector the server returns for `text`: deterministic and distinct per text.
fn server_vector(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dims];
    for (i, b) in text.bytes().enumerate() {
        v[(b as usize + i) % dims] += 1.0 + (i % 3) as f32;
    }
    v[0] += 0.5;
    v
}

fn expected(text: &str) -> Vec<f32> {
    let mut v = server_vector(text, DIMS);
    docket_embed::l2_normalize(&mut v);
    v
}

/// A strict `/v1/embeddings`: checks the key, the content type and the request body the way
/// OpenAI does, records the request, then applies the next fault.
async fn embeddings(State(mock): State<Arc<Mock>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(format!("Bearer {KEY}").as_str()) {
        return openai_error(
            401,
            "Incorrect API key provided: sk-wrong. You can find your API key at your dashboard.",
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return openai_error(400, "expected a JSON body");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(400, "We could not parse the JSON body of your request.");
    };
    let Some(fields) = body.as_object() else {
        return openai_error(400, "body must be an object");
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !["model", "input", "encoding_format", "dimensions"].contains(&k.as_str()))
    {
        return openai_error(
            400,
            &format!("Unrecognized request argument supplied: {unknown}"),
        );
    }
    if body["model"] != MODEL {
        return openai_error(
            404,
            &format!(
                "The model `{}` does not exist or you do not have access to it.",
                body["model"]
            ),
        );
    }
    if body["encoding_format"] != "float" {
        return openai_error(400, "encoding_format must be float");
    }
    let inputs: Option<Vec<String>> = body["input"].as_array().and_then(|a| {
        a.iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            .collect()
    });
    let Some(inputs) = inputs.filter(|i| !i.is_empty() && i.len() <= 2048) else {
        return openai_error(400, "'$.input' is invalid.");
    };
    if let Some(d) = body.get("dimensions")
        && d.as_u64() != Some(DIMS as u64)
    {
        return openai_error(400, "dimensions not supported");
    }
    mock.seen.lock().unwrap().push(Seen {
        inputs: inputs.clone(),
        body: body.clone(),
        at: Instant::now(),
    });

    let fault = mock
        .faults
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| mock.always.lock().unwrap().clone());
    let mut dims = DIMS;
    let mut missing = false;
    match fault {
        None => {}
        Some(Fault::Status(code)) => {
            return openai_error(
                code,
                "The server had an error while processing your request.",
            );
        }
        Some(Fault::RateLimited(retry_after)) => {
            let mut response = openai_error(429, "Rate limit reached for requests");
            let value = match retry_after {
                None => None,
                Some(RetryAfter::Seconds(s)) => Some(s.to_owned()),
                Some(RetryAfter::DateIn(d)) => Some(httpdate::fmt_http_date(SystemTime::now() + d)),
            };
            if let Some(v) = value {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, v.parse().unwrap());
            }
            return response;
        }
        Some(Fault::Malformed) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"object":"list","data":[{"ind"#,
            )
                .into_response();
        }
        Some(Fault::MissingItem) => missing = true,
        Some(Fault::Hang(d)) => tokio::time::sleep(d).await,
        Some(Fault::Dims(n)) => dims = n,
    }

    // Out of order on purpose: the client must sort by `index`.
    let mut order: Vec<usize> = (0..inputs.len()).rev().collect();
    order.rotate_left(inputs.len() / 2);
    if missing {
        order.pop();
    }
    let data: Vec<Value> = order
        .iter()
        .map(|&i| json!({"object": "embedding", "index": i, "embedding": server_vector(&inputs[i], dims)}))
        .collect();
    let tokens: usize = inputs.iter().map(|i| i.len() / 4 + 1).sum();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn assert_close(got: &[Vec<f32>], texts: &[String]) {
    assert_eq!(got.len(), texts.len());
    for (v, t) in got.iter().zip(texts) {
        let want = expected(t);
        assert_eq!(v.len(), want.len());
        for (a, b) in v.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "vector for {t:?}: {v:?} != {want:?}");
        }
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}

#[tokio::test]
async fn embeds_in_input_order_normalised() {
    let server = Server::start().await;
    let e = server.embedder(|_| {});
    assert_eq!(e.name(), format!("openai:{MODEL}"));
    assert_eq!(e.dimensions(), DIMS);
    assert_eq!(e.batch_size(), 64);
    assert_eq!(e.max_input_tokens(), 8191);
    assert_eq!(e.ready(), Ok(()));

    let texts = strings(&[
        "alpha",
        "bravo charlie",
        "delta",
        "echo foxtrot golf",
        "hotel",
    ]);
    let got = e.embed(&texts).await.unwrap();
    assert_close(&got, &texts);

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].inputs, texts);
    assert_eq!(seen[0].body["encoding_format"], "float");
    assert!(seen[0].body.get("dimensions").is_none());
    let stats = e.stats();
    assert_eq!((stats.requests, stats.successes), (1, 1));
    assert_eq!(e.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn sends_dimensions_when_asked() {
    let server = Server::start().await;
    let e = server.embedder(|c| c.send_dimensions = true);
    let texts = strings(&["one"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(server.seen()[0].body["dimensions"], DIMS);
}

#[tokio::test]
async fn empty_inputs_are_zero_vectors_and_not_sent() {
    let server = Server::start().await;
    let e = server.embedder(|_| {});
    assert!(e.embed(&[]).await.unwrap().is_empty());
    let got = e.embed(&strings(&["", "  \n"])).await.unwrap();
    assert_eq!(got, vec![vec![0.0; DIMS]; 2]);
    assert_eq!(server.hits(), 0);

    let got = e.embed(&strings(&["", "real text", " "])).await.unwrap();
    assert_eq!(server.batch_sizes(), [1]);
    assert_eq!(server.seen()[0].inputs, ["real text"]);
    assert_eq!(got[0], vec![0.0; DIMS]);
    assert_close(&got[1..2], &strings(&["real text"]));
    assert_eq!(got[2], vec![0.0; DIMS]);
}

#[tokio::test]
async fn retries_server_errors_then_succeeds() {
    let server = Server::start().await;
    server.push(Fault::Status(500), 1);
    server.push(Fault::Status(503), 1);
    let e = server.embedder(|c| c.max_retries = 2);
    let texts = strings(&["a", "b", "c"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(server.hits(), 3);
    let stats = e.stats();
    assert_eq!(
        (stats.requests, stats.server_errors, stats.successes),
        (3, 2, 1)
    );
    assert_eq!(e.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn server_errors_past_max_retries_are_transient() {
    let server = Server::start().await;
    server.always(Some(Fault::Status(502)));
    let e = server.embedder(|c| c.max_retries = 2);
    let err = e.embed(&strings(&["a"])).await.unwrap_err();
    let EmbedError::Transient(message) = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("502"), "{message}");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn honours_a_short_retry_after_in_seconds() {
    let server = Server::start().await;
    server.push(Fault::RateLimited(Some(RetryAfter::Seconds("1"))), 1);
    let e = server.embedder(|_| {});
    let texts = strings(&["x", "y"]);
    let started = Instant::now();
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.stats().rate_limited, 1);
}

#[tokio::test]
async fn honours_a_retry_after_http_date() {
    let server = Server::start().await;
    server.push(
        Fault::RateLimited(Some(RetryAfter::DateIn(Duration::from_secs(2)))),
        1,
    );
    let e = server.embedder(|_| {});
    let texts = strings(&["x"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    let seen = server.seen();
    let gap = seen[1].at - seen[0].at;
    // The date has whole-second precision: the wait is between 1 and 2 seconds.
    assert!(
        gap >= Duration::from_millis(900) && gap <= Duration::from_millis(2500),
        "retried after {gap:?}"
    );
}

#[tokio::test]
async fn a_long_retry_after_is_unavailable() {
    let server = Server::start().await;
    server.push(Fault::RateLimited(Some(RetryAfter::Seconds("120"))), 1);
    let e = server.embedder(|_| {});
    let started = Instant::now();
    let err = e.embed(&strings(&["x"])).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    let EmbedError::Unavailable {
        retry_after,
        message,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(retry_after, Duration::from_secs(120));
    assert!(message.contains("Rate limit reached"), "{message}");
    assert_eq!(server.hits(), 1);

    // Every call holds back until then, without sending.
    let wait = e.ready().unwrap_err();
    assert!(
        wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
    let err = e.embed(&strings(&["y"])).await.unwrap_err();
    assert!(
        matches!(err, EmbedError::Unavailable { retry_after, .. } if retry_after > Duration::from_secs(110)),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
    // A rate limit says nothing about the provider's health.
    assert_eq!(e.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_429_with_no_retries_left_is_unavailable() {
    let server = Server::start().await;
    server.push(Fault::RateLimited(Some(RetryAfter::Seconds("1"))), 1);
    let e = server.embedder(|c| c.max_retries = 0);
    let err = e.embed(&strings(&["x"])).await.unwrap_err();
    assert!(
        matches!(err, EmbedError::Unavailable { retry_after, .. } if retry_after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn malformed_bodies_are_retried() {
    let server = Server::start().await;
    server.push(Fault::Malformed, 1);
    server.push(Fault::MissingItem, 1);
    let e = server.embedder(|c| c.max_retries = 2);
    let texts = strings(&["p", "q", "r"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(server.hits(), 3);
    assert_eq!(e.stats().malformed, 2);

    server.always(Some(Fault::Malformed));
    let e = server.embedder(|c| c.max_retries = 1);
    let err = e.embed(&texts).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Transient(m) if m.contains("malformed")),
        "{err:?}"
    );
    assert_eq!(server.hits(), 5);
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let server = Server::start().await;
    server.always(Some(Fault::Hang(Duration::from_secs(10))));
    let e = server.embedder(|c| {
        c.timeout_ms = 200;
        c.max_retries = 1;
    });
    let started = Instant::now();
    let err = e.embed(&strings(&["slow"])).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, EmbedError::Transient(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(server.hits(), 2);
    assert_eq!(e.stats().transport_errors, 2);
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = OpenAiConfig::new(format!("http://{addr}/v1"), MODEL, DIMS);
    c.max_retries = 1;
    let e = OpenAiEmbedder::new(c).unwrap();
    let err = e.embed(&strings(&["x"])).await.unwrap_err();
    assert!(matches!(err, EmbedError::Transient(_)), "{err:?}");
    assert_eq!(e.stats().transport_errors, 2);
}

#[tokio::test]
async fn a_wrong_key_is_permanent_and_never_shown() {
    let server = Server::start().await;
    let e = server.embedder(|c| {
        c.api_key = Some("sk-wrong".to_owned());
        c.breaker_threshold = 1;
    });
    let err = e.embed(&strings(&["x"])).await.unwrap_err();
    let EmbedError::Permanent(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("401") && message.contains("Incorrect API key provided"),
        "{message}"
    );
    assert_eq!(
        server.hits(),
        0,
        "the mock records only authorised requests"
    );
    // Not retried, and not a provider failure.
    assert_eq!(e.stats().requests, 1);
    assert_eq!(e.stats().permanent_errors, 1);
    assert_eq!(e.breaker_state(), BreakerState::Closed);

    let debug = format!("{:?} {:?}", server.config(), e);
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[tokio::test]
async fn an_unknown_model_is_permanent() {
    let server = Server::start().await;
    let e = server.embedder(|c| c.model = "no-such-model".to_owned());
    let err = e.embed(&strings(&["x"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Permanent(m) if m.contains("404") && m.contains("does not exist")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bad_request_is_permanent_and_not_retried() {
    let server = Server::start().await;
    server.always(Some(Fault::Status(400)));
    let e = server.embedder(|c| c.breaker_threshold = 2);
    for _ in 0..3 {
        let err = e.embed(&strings(&["x"])).await.unwrap_err();
        assert!(matches!(err, EmbedError::Permanent(_)), "{err:?}");
    }
    assert_eq!(server.hits(), 3);
    assert_eq!(e.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn wrong_dimensions_are_an_error() {
    let server = Server::start().await;
    server.always(Some(Fault::Dims(16)));
    let e = server.embedder(|_| {});
    let err = e.embed(&strings(&["x", "y"])).await.unwrap_err();
    let EmbedError::Permanent(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("16") && message.contains(&DIMS.to_string()),
        "{message}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn over_long_inputs_are_rejected_before_sending() {
    let server = Server::start().await;
    let e = server.embedder(|c| c.max_input_tokens = 5);
    assert_eq!(e.count_tokens(&"a".repeat(20)), 5);
    let err = e
        .embed(&strings(&["short", &"a".repeat(21)]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EmbedError::Permanent(m) if m.contains("input 1")),
        "{err:?}"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn breaker_opens_refuses_then_half_opens() {
    let server = Server::start().await;
    server.always(Some(Fault::Status(500)));
    let cooldown = Duration::from_millis(400);
    let e = server.embedder(|c| {
        c.max_retries = 0;
        c.breaker_threshold = 2;
        c.breaker_cooldown_ms = cooldown.as_millis() as u64;
    });
    let texts = strings(&["x"]);

    assert!(matches!(
        e.embed(&texts).await,
        Err(EmbedError::Transient(_))
    ));
    assert_eq!(e.breaker_state(), BreakerState::Closed);
    assert_eq!(e.ready(), Ok(()));
    assert!(matches!(
        e.embed(&texts).await,
        Err(EmbedError::Unavailable { .. })
    ));
    assert_eq!(e.breaker_state(), BreakerState::Open);
    let wait = e.ready().unwrap_err();
    assert!(
        wait > Duration::from_millis(200) && wait <= cooldown,
        "{wait:?}"
    );

    // Open: refused without sending.
    let err = e.embed(&texts).await.unwrap_err();
    assert!(
        matches!(err, EmbedError::Unavailable { retry_after, .. } if retry_after <= cooldown),
        "{err:?}"
    );
    assert_eq!(server.hits(), 2);
    assert_eq!(
        (e.stats().breaker_opens, e.stats().breaker_rejections),
        (1, 1)
    );

    // After the cooldown one trial goes through; it fails, so the breaker opens again.
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    assert_eq!(e.ready(), Ok(()));
    assert_eq!(e.breaker_state(), BreakerState::HalfOpen);
    assert!(matches!(
        e.embed(&texts).await,
        Err(EmbedError::Unavailable { .. })
    ));
    assert_eq!(server.hits(), 3);
    assert_eq!(e.breaker_state(), BreakerState::Open);
    assert!(e.ready().is_err());

    // The next trial succeeds and closes it.
    server.always(None);
    tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
    assert_eq!(e.breaker_state(), BreakerState::HalfOpen);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(e.breaker_state(), BreakerState::Closed);
    assert_eq!(e.ready(), Ok(()));
    assert_eq!(e.stats().breaker_opens, 2);
}

#[tokio::test]
async fn a_rate_limited_trial_neither_closes_nor_reopens() {
    let server = Server::start().await;
    let e = server.embedder(|c| {
        c.max_retries = 0;
        c.breaker_threshold = 1;
        c.breaker_cooldown_ms = 200;
    });
    let texts = strings(&["x"]);
    server.push(Fault::Status(500), 1);
    assert!(matches!(
        e.embed(&texts).await,
        Err(EmbedError::Unavailable { .. })
    ));
    assert_eq!(e.breaker_state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.push(Fault::RateLimited(Some(RetryAfter::Seconds("60"))), 1);
    let err = e.embed(&texts).await.unwrap_err();
    assert!(matches!(err, EmbedError::Unavailable { .. }), "{err:?}");
    // Still waiting for a trial that proves the provider healthy.
    assert_eq!(e.breaker_state(), BreakerState::HalfOpen);
    assert_eq!(e.stats().breaker_opens, 1);
    assert!(e.ready().is_err(), "the 429 asked for a minute's rest");
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let server = Server::start().await;
    let e = server.embedder(|c| {
        c.max_retries = 0;
        c.breaker_threshold = 2;
    });
    let texts = strings(&["x"]);
    server.push(Fault::Status(500), 1);
    assert!(e.embed(&texts).await.is_err());
    assert!(e.embed(&texts).await.is_ok());
    server.push(Fault::Status(500), 1);
    assert!(e.embed(&texts).await.is_err());
    assert_eq!(e.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn batches_by_max_batch() {
    let server = Server::start().await;
    let e = server.embedder(|c| c.max_batch = 4);
    assert_eq!(e.batch_size(), 4);
    let texts: Vec<String> = (0..10).map(|i| format!("text number {i}")).collect();
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(server.batch_sizes(), [4, 4, 2]);
    let sent: Vec<String> = server.seen().into_iter().flat_map(|s| s.inputs).collect();
    assert_eq!(sent, texts);
}

#[tokio::test]
async fn batches_by_token_budget() {
    let server = Server::start().await;
    let e = server.embedder(|c| c.max_tokens_per_request = 10);
    // 16 ASCII characters: 4 estimated tokens each, so two fit in 10.
    let texts: Vec<String> = (0..5).map(|i| format!("sixteen chars {i:02}")).collect();
    assert!(texts.iter().all(|t| e.count_tokens(t) == 4), "{texts:?}");
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    assert_eq!(server.batch_sizes(), [2, 2, 1]);
}

#[tokio::test]
async fn paces_requests_per_minute() {
    let server = Server::start().await;
    let e = server.embedder(|c| {
        c.max_batch = 1;
        c.requests_per_minute = Some(120);
    });
    let texts = strings(&["one", "two", "three"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(450), "requests {gap:?} apart");
    }
}

#[tokio::test]
async fn paces_tokens_per_minute() {
    let server = Server::start().await;
    // 600 tokens a minute: a 5-token request pushes the next back by 0.5 s.
    let e = server.embedder(|c| {
        c.max_batch = 1;
        c.tokens_per_minute = Some(600);
    });
    let texts = strings(&["twenty characters 01", "twenty characters 02"]);
    assert_eq!(e.count_tokens(&texts[0]), 5);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
    let seen = server.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(450), "requests {gap:?} apart");
}

#[tokio::test]
async fn config_deserialises_with_defaults() {
    let c: EmbedConfig = serde_json::from_value(json!({
        "provider": "openai",
        "base_url": "https://api.openai.com/v1",
        "model": "text-embedding-3-small",
        "dimensions": 1536
    }))
    .unwrap();
    let EmbedConfig::Openai(c) = c else {
        panic!("{c:?}")
    };
    assert_eq!(
        c,
        OpenAiConfig::new("https://api.openai.com/v1", "text-embedding-3-small", 1536)
    );
    assert_eq!(c.api_key, None);
    assert!(!c.send_dimensions);
    assert_eq!(
        (c.max_batch, c.max_input_tokens, c.max_tokens_per_request),
        (64, 8191, 300_000)
    );
    assert_eq!((c.requests_per_minute, c.tokens_per_minute), (None, None));
    assert_eq!(
        (
            c.timeout_ms,
            c.max_retries,
            c.breaker_threshold,
            c.breaker_cooldown_ms
        ),
        (30_000, 2, 5, 30_000)
    );

    let full: EmbedConfig = serde_json::from_value(json!({
        "provider": "openai",
        "base_url": "http://127.0.0.1:11434/v1",
        "api_key": "secret",
        "model": "nomic-embed-text",
        "dimensions": 768,
        "send_dimensions": true,
        "max_batch": 16,
        "max_input_tokens": 2048,
        "max_tokens_per_request": 20000,
        "requests_per_minute": 60,
        "tokens_per_minute": 100000,
        "timeout_ms": 1000,
        "max_retries": 0,
        "breaker_threshold": 3,
        "breaker_cooldown_ms": 5000
    }))
    .unwrap();
    let EmbedConfig::Openai(full) = full else {
        panic!()
    };
    assert_eq!(full.requests_per_minute, Some(60));
    assert!(!format!("{full:?}").contains("secret"));

    let unknown = serde_json::from_value::<EmbedConfig>(json!({
        "provider": "openai", "base_url": "http://x/v1", "model": "m", "dimensions": 3, "batch": 4
    }));
    assert!(unknown.is_err());
    let missing = serde_json::from_value::<EmbedConfig>(
        json!({"provider": "openai", "base_url": "http://x/v1", "model": "m"}),
    );
    assert!(missing.is_err());
}

#[tokio::test]
async fn rejects_bad_config() {
    let ok = OpenAiConfig::new("http://127.0.0.1:1/v1", "m", 4);
    assert!(OpenAiEmbedder::new(ok.clone()).is_ok());
    for bad in [
        OpenAiConfig {
            base_url: "not a url".into(),
            ..ok.clone()
        },
        OpenAiConfig {
            base_url: "ftp://host/v1".into(),
            ..ok.clone()
        },
        OpenAiConfig {
            model: " ".into(),
            ..ok.clone()
        },
        OpenAiConfig {
            dimensions: 0,
            ..ok.clone()
        },
        OpenAiConfig {
            max_batch: 0,
            ..ok.clone()
        },
        OpenAiConfig {
            requests_per_minute: Some(0),
            ..ok.clone()
        },
        OpenAiConfig {
            timeout_ms: 0,
            ..ok.clone()
        },
    ] {
        assert!(
            matches!(
                OpenAiEmbedder::new(bad.clone()),
                Err(EmbedError::Permanent(_))
            ),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn builds_from_config() {
    let server = Server::start().await;
    let e = docket_embed::build(&EmbedConfig::Openai(server.config()))
        .await
        .unwrap();
    assert_eq!(e.name(), format!("openai:{MODEL}"));
    let texts = strings(&["built"]);
    assert_close(&e.embed(&texts).await.unwrap(), &texts);
}
