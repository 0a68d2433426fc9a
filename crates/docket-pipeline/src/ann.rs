//! docket's own approximate-nearest-neighbour index, for backends that have none (SQLite,
//! PostgreSQL without pgvector): an HNSW graph ([usearch](https://github.com/unum-cloud/usearch))
//! over the running embedder's vectors, held in memory by each `serve` process.
//!
//! **What it holds.** One entry per embedded chunk of an active generation whose vectors the
//! running embedder made, keyed by chunk id, stored as int8 (a quarter of `f32`'s bytes). The
//! index only proposes candidates: a search takes `max(4k, 40)` of them and orders them by the
//! stored `f32` vectors, read back from the database with the chunks' liveness, so scores are
//! exact, int8 rounding costs no recall that the oversampling does not win back, and a chunk
//! deleted a moment ago is never returned (it is dropped from the index when seen).
//!
//! **How it stays current.** Every activation, embedder adoption and deletion of a document is
//! logged in the database under a clock number, in commit order
//! ([`docket_core::DocumentStore::search_index_changes`]). The index keeps its place in that
//! log (a watermark) and, every [`SYNC_EVERY`] and whenever a search finds the log past it
//! ([`VectorIndex::current_on`]), applies what came after: the document's previous chunks
//! leave, its active ones (if the running embedder made them) come in. Several processes on
//! one database each follow the log on their own.
//!
//! **Build.** At start the index reads the whole log (every searchable document) in pages,
//! reporting its progress; until it has caught up, searches scan the stored vectors exactly
//! (slower, never wrong).
//!
//! **Exact where it is faster.** A search restricted to documents holding at most
//! [`EXACT_MAX`] chunks, or at most 1/[`EXACT_SHARE`] of the index, scans them exactly.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use docket_core::{ChunkVectorPageParams, DocumentStore, Driver, SearchIndexChangesParams};
use serde::Serialize;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use uuid::Uuid;

use crate::PipelineError;

/// Neighbours per node (HNSW's `M`): at a million 384-d vectors (built with `efConstruction`
/// 64), 24 reached recall@10 0.95 at `ef` 256 where 16 reached 0.87, and the process stays
/// under 1 GB (`docket bench search`).
pub const CONNECTIVITY: usize = 24;
/// Candidate list size while inserting (`efConstruction`). At a million clustered vectors
/// (`docket bench search`), 64 built a graph whose recall@10 levelled off at 0.95–0.96
/// however wide the search (0.959 at `ef` 1024); 128 reached 0.974 at `ef` 64 and 0.9995 at
/// 128, for a build 1.6× as long (745 s against 465 s on 2 cores).
pub const EXPANSION_ADD: usize = 128;
/// Candidate list size while searching (`ef`): recall@10 0.9995 at a million vectors with
/// the graph above, p50 2.0 ms one at a time on 2 cores, where 256 took 2.4 ms for 1.0.
pub const EXPANSION_SEARCH: usize = 128;
/// Candidates taken per result wanted, to be ordered by the stored `f32` vectors.
pub const OVERSAMPLE: usize = 4;
/// The fewest candidates a search takes.
pub const MIN_CANDIDATES: usize = 40;
/// A search restricted to documents holding at most this many chunks scans them exactly, as
/// does one restricted to at most 1/[`EXACT_SHARE`] of the index: HNSW with a filter that
/// passes few vectors explores most of the graph (`docket bench search`'s `scoped` figures at
/// 1,000,000 chunks: 1,000 took 1.3 s by the index and 14 ms by the scan, 5,000 536 ms
/// against 97 ms, 20,000 220 ms against 463 ms; the scan costs ~23 ms per 1,000 chunks).
pub const EXACT_MAX: usize = 2_000;
/// See [`EXACT_MAX`]: 1/100 of the index (10,000 chunks of a million).
pub const EXACT_SHARE: usize = 100;
/// How often the index applies the database's changes between searches.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);
/// Log entries read per step.
const CHANGES_PAGE: i64 = 512;
/// Vectors read per query while loading documents.
const VECTORS_PAGE: i64 = 4096;
/// Vectors loaded (as `f32`) before they are inserted: bounds the memory a build needs beside
/// the index itself (~12 MiB at 384 dimensions).
const VECTOR_BUDGET: i64 = 8192;
/// Documents whose vectors are read at once: the stores read the chunks of this many
/// documents from the documents themselves; more would walk every chunk in id order, once per
/// batch (a build over many small documents would read the table again and again).
const DOCUMENTS_BUDGET: usize = 256;

/// What the index holds, for `/readyz`, `/metrics` and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndexStatus {
    /// The embedder whose vectors it holds.
    pub fingerprint: String,
    /// Whether it has caught up with the database (until then searches scan exactly).
    pub ready: bool,
    /// Vectors held.
    pub vectors: u64,
    /// Documents they belong to.
    pub documents: u64,
    /// Memory the index uses (vectors and graph), in bytes.
    pub memory_bytes: u64,
    /// Of that, per vector held.
    pub bytes_per_vector: u64,
    /// How each vector is stored.
    pub storage: &'static str,
    /// Seconds the build at start took, once done.
    pub build_seconds: Option<f64>,
    /// The log entries applied so far (during the build: how far it has got).
    pub changes_applied: u64,
    /// Documents of this embedder the build at start had to index (its progress is
    /// `documents` of this).
    pub build_documents: u64,
}

/// Where the index stands in the database's change log.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    seq: i64,
    document: Uuid,
    /// When the last read that found the log's end began: every change committed before
    /// then is applied.
    caught_up: Option<Instant>,
}

/// A place in the database's change log ([`VectorIndex::mark`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMark {
    seq: i64,
    document: Uuid,
}

/// The in-process vector index of one embedder; see the [module docs](self).
pub struct VectorIndex {
    fingerprint: String,
    dims: usize,
    threads: usize,
    index: RwLock<Index>,
    /// Held while changes are applied: one writer at a time, in log order.
    cursor: tokio::sync::Mutex<Cursor>,
    /// The cursor's place in the log as of the last change applied, readable while a read of
    /// the log holds the cursor (see [`Self::current_on`]).
    applied: Mutex<LogMark>,
    /// Each indexed document's chunk ids.
    docs: Mutex<HashMap<Uuid, Vec<u64>>>,
    status: Mutex<IndexStatus>,
    /// Reads of the change log so far.
    log_reads: AtomicU64,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("fingerprint", &self.fingerprint)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

/// `v` as int8, scaled so that its largest component is ±127. Cosine similarity ignores a
/// vector's length, so the scale changes no ranking; but the components of a unit vector of
/// hundreds of dimensions are a few hundredths, and usearch's own conversion (by the L2 norm)
/// leaves them a dozen levels where this gives them all 255 (measured over 100,000 clustered
/// 384-d vectors: the index's own top 10 held 91.7 % of the exact top 10 with usearch's
/// conversion, 98.7 % with this one).
fn quantize(v: &[f32]) -> Vec<i8> {
    let top = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if !(top > 0.0 && top.is_finite()) {
        return vec![0; v.len()];
    }
    v.iter()
        .map(|x| (x / top * 127.0).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

fn index_error(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::SearchIndex(format!("{what}: {e}"))
}

impl VectorIndex {
    /// An empty index for `dims`-dimensional vectors of the embedder `fingerprint`.
    pub fn new(fingerprint: &str, dims: usize) -> Result<Self, PipelineError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 16);
        let index = Index::new(&IndexOptions {
            dimensions: dims,
            metric: MetricKind::Cos,
            quantization: ScalarKind::I8,
            connectivity: CONNECTIVITY,
            expansion_add: EXPANSION_ADD,
            expansion_search: EXPANSION_SEARCH,
            multi: false,
        })
        .map_err(|e| index_error("creating the vector index", e))?;
        // Searches run on tokio's threads and `spawn_blocking`'s: more than the cores.
        index
            .reserve_capacity_and_threads(1024, threads * 4 + 8)
            .map_err(|e| index_error("sizing the vector index", e))?;
        Ok(Self {
            fingerprint: fingerprint.to_owned(),
            dims,
            threads,
            index: RwLock::new(index),
            cursor: tokio::sync::Mutex::new(Cursor::default()),
            applied: Mutex::new(LogMark::default()),
            docs: Mutex::new(HashMap::new()),
            status: Mutex::new(IndexStatus {
                fingerprint: fingerprint.to_owned(),
                storage: "int8",
                ..IndexStatus::default()
            }),
            log_reads: AtomicU64::new(0),
        })
    }

    /// The embedder whose vectors it holds.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// What it holds now.
    pub fn status(&self) -> IndexStatus {
        let mut s = self.status.lock().expect("status lock").clone();
        let index = self.index.read().expect("index lock");
        s.vectors = index.size() as u64;
        s.memory_bytes = index.memory_usage() as u64;
        s.bytes_per_vector = s.memory_bytes.checked_div(s.vectors).unwrap_or(0);
        s.documents = self.docs.lock().expect("docs lock").len() as u64;
        s
    }

    /// How many times it has read the database's change log.
    pub fn log_reads(&self) -> u64 {
        self.log_reads.load(Ordering::Relaxed)
    }

    /// Whether it has caught up with the database once.
    pub fn ready(&self) -> bool {
        self.status.lock().expect("status lock").ready
    }

    /// Applies every change committed before this call. Returns how many entries it applied.
    ///
    /// Concurrent searches share the reads: one that waited while another read the log to its
    /// end, starting after this call began, has nothing left to read (eight searches at once
    /// made eight queries in a row before).
    pub async fn sync<D: Driver>(self: &Arc<Self>, driver: &D) -> Result<u64, PipelineError> {
        let asked = Instant::now();
        let mut applied = 0;
        loop {
            let (n, more) = self.sync_page(driver, asked).await?;
            applied += n;
            if !more {
                return Ok(applied);
            }
        }
    }

    /// Its place in the log as of the last change applied: what it holds now includes every
    /// change up to there (see [`Self::current_on`]).
    pub fn mark(&self) -> LogMark {
        *self.applied.lock().expect("applied lock")
    }

    /// Whether the log holds nothing after `mark` (taken before the index was searched), asked
    /// on `conn` (the connection a search then reads its candidates on): then what the search
    /// found includes every change committed before this call. One read of the log's next
    /// entry, waiting on no other read. `false`: call [`Self::sync`] and search again.
    pub async fn current_on<C: DocumentStore>(
        &self,
        conn: &mut C,
        mark: LogMark,
    ) -> Result<bool, PipelineError> {
        let next = conn
            .search_index_changes(&SearchIndexChangesParams {
                after_seq: mark.seq,
                after_document: mark.document,
                limit: 1,
            })
            .await?;
        Ok(next.is_empty())
    }

    /// Applies the next page of the log: how many entries, and whether more may follow.
    async fn sync_page<D: Driver>(
        self: &Arc<Self>,
        driver: &D,
        asked: Instant,
    ) -> Result<(u64, bool), PipelineError> {
        let mut cursor = self.cursor.lock().await;
        if cursor.caught_up.is_some_and(|at| at >= asked) {
            return Ok((0, false));
        }
        let read_at = Instant::now();
        self.log_reads.fetch_add(1, Ordering::Relaxed);
        let changes = {
            let mut c = driver.conn().await?;
            c.search_index_changes(&SearchIndexChangesParams {
                after_seq: cursor.seq,
                after_document: cursor.document,
                limit: CHANGES_PAGE,
            })
            .await?
        };
        if changes.is_empty() {
            cursor.caught_up = Some(read_at);
            return Ok((0, false));
        }
        // As many entries as keep the vectors read at once under the budget (at least one).
        let relevant = |c: &docket_core::SearchIndexChange| {
            c.searchable && c.embedder_fingerprint.as_deref() == Some(&self.fingerprint)
        };
        let mut taken = 0;
        let mut vectors_due = 0;
        let mut documents_due = 0;
        for c in &changes {
            taken += 1;
            if relevant(c) {
                vectors_due += c.chunk_count.max(1);
                documents_due += 1;
            }
            if vectors_due >= VECTOR_BUDGET || documents_due >= DOCUMENTS_BUDGET {
                break;
            }
        }
        let more = taken < changes.len() || changes.len() as i64 == CHANGES_PAGE;
        let changes = &changes[..taken];
        let last = &changes[taken - 1];
        let next = Cursor {
            seq: last.seq,
            document: last.document_id,
            caught_up: if more {
                cursor.caught_up
            } else {
                Some(read_at)
            },
        };
        let load: Vec<Uuid> = changes
            .iter()
            .filter(|c| relevant(c))
            .map(|c| c.document_id)
            .collect();
        let mut vectors: Vec<(Uuid, i64, Vec<f32>)> = Vec::new();
        let mut after_id = 0;
        while !load.is_empty() {
            let page = {
                let mut c = driver.conn().await?;
                c.chunk_vectors_page(&ChunkVectorPageParams {
                    document_ids: Some(load.clone()),
                    embedder_fingerprint: Some(self.fingerprint.clone()),
                    after_id,
                    limit: VECTORS_PAGE,
                    chunk_ids: None,
                })
                .await?
            };
            let full = page.len() as i64 == VECTORS_PAGE;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            vectors.extend(
                page.into_iter()
                    .filter(|v| v.embedding.len() == self.dims)
                    .map(|v| (v.document_id, v.id, v.embedding)),
            );
            if !full {
                break;
            }
        }
        let changed: Vec<Uuid> = changes.iter().map(|c| c.document_id).collect();
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.apply(&changed, vectors))
            .await
            .map_err(|e| index_error("applying changes", e))??;
        *cursor = next;
        *self.applied.lock().expect("applied lock") = LogMark {
            seq: next.seq,
            document: next.document,
        };
        let n = changes.len() as u64;
        self.status.lock().expect("status lock").changes_applied += n;
        Ok((n, more))
    }

    /// Replaces the entries of the `changed` documents by `vectors` (document, chunk id,
    /// vector): chunks no longer there leave, new ones are inserted (on every core).
    fn apply(
        &self,
        changed: &[Uuid],
        vectors: Vec<(Uuid, i64, Vec<f32>)>,
    ) -> Result<(), PipelineError> {
        let mut now: HashMap<Uuid, Vec<u64>> = HashMap::new();
        for (doc, id, _) in &vectors {
            now.entry(*doc).or_default().push(*id as u64);
        }
        let mut kept: HashSet<u64> = HashSet::new();
        let mut gone: Vec<u64> = Vec::new();
        {
            let mut docs = self.docs.lock().expect("docs lock");
            for doc in changed {
                let new: HashSet<u64> = now.get(doc).into_iter().flatten().copied().collect();
                for key in docs.remove(doc).unwrap_or_default() {
                    if new.contains(&key) {
                        kept.insert(key);
                    } else {
                        gone.push(key);
                    }
                }
            }
        }
        {
            let index = self.index.read().expect("index lock");
            for key in gone {
                index
                    .remove(key)
                    .map_err(|e| index_error("removing a vector", e))?;
            }
        }
        let adds: Vec<(u64, Vec<f32>)> = vectors
            .into_iter()
            .filter(|(_, id, _)| !kept.contains(&(*id as u64)))
            .map(|(_, id, v)| (id as u64, v))
            .collect();
        self.insert(&adds)?;
        self.docs.lock().expect("docs lock").extend(now);
        Ok(())
    }

    /// Inserts `adds`, growing the index first when they would not fit.
    fn insert(&self, adds: &[(u64, Vec<f32>)]) -> Result<(), PipelineError> {
        if adds.is_empty() {
            return Ok(());
        }
        {
            let index = self.index.read().expect("index lock");
            let needed = index.size() + adds.len();
            if needed > index.capacity() {
                drop(index);
                let index = self.index.write().expect("index lock");
                let capacity = needed.max(index.capacity() * 2);
                index
                    .reserve_capacity_and_threads(capacity, self.threads * 4 + 8)
                    .map_err(|e| index_error("growing the vector index", e))?;
            }
        }
        let index = self.index.read().expect("index lock");
        let threads = if adds.len() < 256 { 1 } else { self.threads };
        let per = adds.len().div_ceil(threads);
        std::thread::scope(|s| {
            let index = &*index;
            let workers: Vec<_> = adds
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        for (key, v) in part {
                            index
                                .add(*key, &quantize(v))
                                .map_err(|e| index_error("adding a vector", e))?;
                        }
                        Ok::<_, PipelineError>(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("index insert thread"))
        })
    }

    /// The chunk ids of `documents` that the index holds.
    pub fn keys_of(&self, documents: &[Uuid]) -> HashSet<u64> {
        let docs = self.docs.lock().expect("docs lock");
        documents
            .iter()
            .filter_map(|d| docs.get(d))
            .flatten()
            .copied()
            .collect()
    }

    /// Up to `n` chunk ids near `query`, among `allowed` when given, nearest first by the
    /// index's int8 vectors.
    pub fn candidates(
        &self,
        query: &[f32],
        n: usize,
        allowed: Option<&HashSet<u64>>,
    ) -> Result<Vec<i64>, PipelineError> {
        if query.len() != self.dims || n == 0 {
            return Ok(Vec::new());
        }
        let index = self.index.read().expect("index lock");
        let query = quantize(query);
        let found = match allowed {
            None => index.search(&query, n),
            Some(allowed) => index.filtered_search(&query, n, |key| allowed.contains(&key)),
        }
        .map_err(|e| index_error("searching the vector index", e))?;
        Ok(found.keys.into_iter().map(|k| k as i64).collect())
    }

    /// Drops chunks the database no longer has (seen by a search before the log said so).
    pub fn forget(&self, ids: &[i64]) {
        let index = self.index.read().expect("index lock");
        for id in ids {
            let _ = index.remove(*id as u64);
        }
    }

    /// How many vectors it holds.
    pub fn len(&self) -> usize {
        self.index.read().expect("index lock").size()
    }

    /// Back to [`EXPANSION_SEARCH`] after [`Self::set_expansion_search`].
    pub fn reset_expansion_search(&self) {
        self.set_expansion_search(EXPANSION_SEARCH);
    }

    /// Sets the candidate list size of searches (`ef`; benchmarks compare them).
    pub fn set_expansion_search(&self, ef: usize) {
        self.index
            .read()
            .expect("index lock")
            .change_expansion_search(ef);
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the build done.
    fn built(&self, seconds: f64) {
        let mut s = self.status.lock().expect("status lock");
        s.ready = true;
        s.build_seconds = Some(seconds);
    }

    /// Builds the index from the database (progress in the log and [`VectorIndex::status`]),
    /// then follows the database's changes until `stop`.
    pub async fn follow<D: Driver>(
        self: Arc<Self>,
        driver: D,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let started = Instant::now();
        let total = match driver.conn().await {
            Ok(mut c) => c.document_embedders().await.map_or(0, |counts| {
                counts
                    .iter()
                    .filter(|c| c.embedder_fingerprint.as_deref() == Some(&self.fingerprint))
                    .map(|c| c.documents.max(0) as u64)
                    .sum()
            }),
            Err(_) => 0,
        };
        self.status.lock().expect("status lock").build_documents = total;
        tracing::info!(embedder = %self.fingerprint, documents = total, "building the vector index");
        let mut last_report = Instant::now();
        loop {
            // A page at a time, so that progress shows and `stop` is heard.
            let step = tokio::select! {
                r = self.sync_page(&driver, Instant::now()) => r,
                () = stop.cancelled() => return,
            };
            match step {
                Ok((_, true)) => {
                    if last_report.elapsed() >= Duration::from_secs(5) {
                        let s = self.status();
                        tracing::info!(
                            vectors = s.vectors,
                            documents = s.documents,
                            of = total,
                            "building the vector index"
                        );
                        last_report = Instant::now();
                    }
                }
                Ok((_, false)) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "building the vector index; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        self.built(seconds);
        let s = self.status();
        tracing::info!(
            vectors = s.vectors,
            documents = s.documents,
            memory_bytes = s.memory_bytes,
            seconds,
            "vector index ready"
        );
        loop {
            tokio::select! {
                () = tokio::time::sleep(SYNC_EVERY) => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.sync(&driver).await {
                tracing::warn!(error = %e, "updating the vector index");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic unit vectors in clusters, as embeddings are.
    fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..20)
            .map(|_| (0..dims).map(|_| next()).collect())
            .collect();
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = centres[i % 20].iter().map(|c| c + next() * 0.6).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect()
    }

    fn exact(data: &[(u64, Vec<f32>)], q: &[f32], k: usize) -> Vec<u64> {
        let mut scored: Vec<(f32, u64)> = data
            .iter()
            .map(|(id, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), *id))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, id)| id).collect()
    }

    /// Searches that ask while a read of the change log is under way share the next read:
    /// each reading for itself made eight queries in a row for eight searches at once.
    #[tokio::test]
    async fn searches_waiting_on_a_read_share_the_next() {
        use docket_conformance::harness::TestDb;
        let db = docket_conformance::harness::sqlite().await;
        let index = Arc::new(VectorIndex::new("fp", 8).unwrap());
        // A read under way (its cursor held) while eight searches ask.
        let held = index.cursor.lock().await;
        let searches: Vec<_> = (0..8)
            .map(|_| {
                let (index, driver) = (index.clone(), db.driver().clone());
                tokio::spawn(async move { index.sync(&driver).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        for search in searches {
            search.await.unwrap().unwrap();
        }
        assert_eq!(
            index.log_reads(),
            1,
            "one read, begun after all eight asked"
        );
        // A search that asks after that read reads again: a change may have come since.
        index.sync(db.driver()).await.unwrap();
        assert_eq!(index.log_reads(), 2);
    }

    #[test]
    fn candidates_hold_the_nearest_and_follow_replacements() {
        let dims = 64;
        let index = VectorIndex::new("fp", dims).unwrap();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // Queries from the same clusters as the data, as real queries are.
        let mut data = vectors(3050, dims, 7);
        let queries = data.split_off(3000);
        let rows: Vec<(Uuid, i64, Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (if i % 2 == 0 { a } else { b }, i as i64 + 1, v.clone()))
            .collect();
        index.apply(&[a, b], rows.clone()).unwrap();
        assert_eq!(index.len(), 3000, "grown past its first capacity");
        // A benchmark's candidate list size holds until it resets it.
        let ef = || index.index.read().unwrap().expansion_search();
        assert_eq!(ef(), EXPANSION_SEARCH);
        index.set_expansion_search(64);
        assert_eq!(ef(), 64);
        index.reset_expansion_search();
        assert_eq!(ef(), EXPANSION_SEARCH);
        let keyed: Vec<(u64, Vec<f32>)> = rows
            .iter()
            .map(|(_, id, v)| (*id as u64, v.clone()))
            .collect();

        // Recall of the candidates (4 per result wanted) against the exact best 10.
        let mut found = 0;
        for q in &queries {
            let truth = exact(&keyed, q, 10);
            let c = index.candidates(q, 40, None).unwrap();
            found += truth.iter().filter(|t| c.contains(&(**t as i64))).count();
        }
        let recall = found as f64 / 500.0;
        assert!(recall >= 0.95, "recall@10 of 40 candidates: {recall}");

        // Restricted to `a`'s chunks: only those.
        let allowed = index.keys_of(&[a]);
        assert_eq!(allowed.len(), 1500);
        let c = index.candidates(&queries[0], 40, Some(&allowed)).unwrap();
        assert_eq!(c.len(), 40);
        assert!(c.iter().all(|id| (id - 1) % 2 == 0), "only a's chunks");

        // `b` replaced by 10 new chunks (ids above the old), `a` gone.
        let new: Vec<(Uuid, i64, Vec<f32>)> = (0..10)
            .map(|i| (b, 10_000 + i, data[i as usize].clone()))
            .collect();
        index.apply(&[a, b], new).unwrap();
        assert_eq!(index.len(), 10);
        let c = index.candidates(&data[3], 40, None).unwrap();
        assert_eq!(c.len(), 10);
        assert_eq!(c[0], 10_003, "its own vector is nearest");
        assert!(index.keys_of(&[a]).is_empty());

        index.forget(&[10_003]);
        let c = index.candidates(&data[3], 40, None).unwrap();
        assert!(!c.contains(&10_003));
        assert!(
            index.candidates(&[0.0; 3], 10, None).unwrap().is_empty(),
            "another dimension finds nothing"
        );
    }
}
