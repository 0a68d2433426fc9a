//! Search: by meaning (the running embedder's vectors), by words (the database's full-text
//! index), or both fused by Reciprocal Rank Fusion (the default for the API).
//!
//! **Vector** ranks chunks by cosine similarity to the query's vector, among documents whose
//! vectors the running embedder made (never another's: [`crate::reindex`]). On PostgreSQL
//! with pgvector the database answers from its HNSW index; elsewhere, in a process that
//! started one ([`Pipeline::start_search_index`]), docket's own HNSW index ([`crate::ann`])
//! proposes candidates and the stored vectors order them; otherwise (and while that index is
//! being built) docket scans the stored vectors in pages and keeps the best `k`.
//!
//! **Text** ranks chunks that contain any of the query's words (stemmed) by the backend's
//! relevance (SQLite FTS5's BM25, PostgreSQL's `ts_rank_cd`). It needs no embedder, and it
//! finds documents whatever embedder made their vectors.
//!
//! **Hybrid** takes the best `n = clamp(2k, 50, 1000)` of each and scores every chunk
//! `Σ 1 / (60 + rank)` over the lists it is in (Reciprocal Rank Fusion, Cormack et al. 2009):
//! ranks, not scores, are fused, so the two scales never need reconciling, and a chunk that
//! both find near the top beats one that only one finds first.

use std::collections::HashMap;
use std::sync::Arc;

use docket_core::{
    ChunkRow, ChunkSearchParams, ChunkTextSearchParams, ChunkVectorPageParams,
    DocumentFilterParams, DocumentStore, Driver,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ann::{self, VectorIndex};
use crate::{Pipeline, PipelineError};

/// How a search ranks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Vector and text rankings fused (Reciprocal Rank Fusion).
    #[default]
    Hybrid,
    /// Cosine similarity of the running embedder's vectors.
    Vector,
    /// Full-text relevance of the query's words.
    Text,
}

/// The constant of Reciprocal Rank Fusion: how much the top ranks dominate. The usual 60
/// (from fusing deep TREC runs) flattens the top ten: a chunk first in one ranking and absent
/// from the other scored below one 15th in both. With 10, a strong first place counts. On
/// `docket bench retrieval`'s 40 questions held out from the first comparison, recall@5 with
/// `local` went from 0.775 to 0.825 and the answer's rank improved for 8 of 60 questions and
/// worsened for 3; with `hashing`, 19 against 4 (docs/benchmarks.md).
pub const RRF_K: f32 = 10.0;

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// The score the hits are ordered by: cosine similarity (−1 to 1) in vector mode, the
    /// backend's text relevance in text mode, the fused score in hybrid mode.
    pub score: f32,
    /// The chunk.
    pub chunk: ChunkRow,
    /// Cosine similarity to the query, when the vector ranking found the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f32>,
    /// Its rank there (1 = best).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_rank: Option<usize>,
    /// Text relevance, when the text ranking found the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_score: Option<f32>,
    /// Its rank there (1 = best).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_rank: Option<usize>,
}

/// How a vector ranking is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorPath {
    /// The database's index (pgvector); else docket's own index when this process has one
    /// built, except for a scope of at most [`ann::EXACT_MAX`] chunks; else the scan.
    Auto,
    /// The database's index; else docket's own index whenever this process has one built.
    Index,
    /// The exact scan of the stored vectors.
    Scan,
}

/// A ranked list of `(score, chunk id)`, best first.
pub type Ranked = Vec<(f32, i64)>;

impl<D: Driver> Pipeline<D> {
    /// The `k` chunks most similar to `query` (cosine), among completed documents — all of
    /// them, or those in `document_ids` — whose vectors the running embedder made: vectors of
    /// another embedder are never ranked against its own ([`Pipeline::embedder_report`] says
    /// how many documents that leaves out). [`Pipeline::search_mode`] with
    /// [`SearchMode::Vector`].
    pub async fn search(
        &self,
        query: &str,
        k: usize,
        document_ids: Option<Vec<Uuid>>,
    ) -> Result<Vec<SearchHit>, PipelineError> {
        self.search_mode(query, k, document_ids, SearchMode::Vector)
            .await
    }

    /// The `k` best chunks for `query` by `mode`; see the [module docs](self).
    pub async fn search_mode(
        &self,
        query: &str,
        k: usize,
        document_ids: Option<Vec<Uuid>>,
        mode: SearchMode,
    ) -> Result<Vec<SearchHit>, PipelineError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let depth = match mode {
            SearchMode::Hybrid => (2 * k).clamp(50, 1000),
            _ => k,
        };
        let vector = if mode == SearchMode::Text {
            Vec::new()
        } else {
            self.vector_ranking(query, depth, document_ids.clone())
                .await?
        };
        let text = if mode == SearchMode::Vector {
            Vec::new()
        } else {
            self.text_ranking(query, depth, document_ids).await?
        };
        let fused: Ranked = match mode {
            SearchMode::Vector => vector.clone(),
            SearchMode::Text => text.clone(),
            SearchMode::Hybrid => fuse(&[&vector, &text]),
        };
        let fused: Ranked = fused.into_iter().take(k).collect();
        let ids: Vec<i64> = fused.iter().map(|(_, id)| *id).collect();
        let rows = {
            let mut c = self.inner.driver.conn().await?;
            c.chunk_get_many(&ids).await?
        };
        let rows: HashMap<i64, ChunkRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        // (score, rank) of each chunk in each list.
        let ranks = |list: &Ranked| -> HashMap<i64, (f32, usize)> {
            list.iter()
                .enumerate()
                .map(|(at, (score, id))| (*id, (*score, at + 1)))
                .collect()
        };
        let (in_vector, in_text) = (ranks(&vector), ranks(&text));
        Ok(fused
            .into_iter()
            .filter_map(|(score, id)| {
                let chunk = rows.get(&id)?.clone();
                let v = in_vector.get(&id).copied();
                let t = in_text.get(&id).copied();
                Some(SearchHit {
                    score,
                    chunk,
                    vector_score: v.map(|(s, _)| s),
                    vector_rank: v.map(|(_, r)| r),
                    text_score: t.map(|(s, _)| s),
                    text_rank: t.map(|(_, r)| r),
                })
            })
            .collect())
    }

    /// Starts docket's own vector index for the running embedder, where the database has no
    /// vector index of its own (pgvector): built in the background (searches scan until it is
    /// ready), then kept in step with the database until `stop`. Returns it, or `None` where
    /// the database answers vector searches itself. A second call returns the first's index.
    pub async fn start_search_index(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Option<Arc<VectorIndex>>, PipelineError> {
        if let Some(index) = self.inner.ann.get() {
            return Ok(Some(index.clone()));
        }
        let native = {
            let mut c = self.inner.driver.conn().await?;
            c.vector_search_available().await?
        };
        if native {
            return Ok(None);
        }
        let identity = self.inner.embedder.identity();
        let index = Arc::new(VectorIndex::new(
            &identity.fingerprint,
            self.inner.embedder.dimensions(),
        )?);
        let index = self.inner.ann.get_or_init(|| index).clone();
        tokio::spawn(index.clone().follow(self.inner.driver.clone(), stop));
        Ok(Some(index))
    }

    /// docket's own vector index, when this process started one.
    pub fn search_index(&self) -> Option<&Arc<VectorIndex>> {
        self.inner.ann.get()
    }

    /// The documents a search is restricted to: `document_ids` (when given), narrowed to those
    /// whose file name contains `filename` and whose metadata contains `metadata` (as
    /// PostgreSQL's `jsonb @>` decides). `None`: every document.
    pub async fn search_scope(
        &self,
        document_ids: Option<Vec<Uuid>>,
        filename: Option<String>,
        metadata: Option<serde_json::Value>,
    ) -> Result<Option<Vec<Uuid>>, PipelineError> {
        if filename.is_none() && metadata.is_none() {
            return Ok(document_ids);
        }
        let matching = {
            let mut c = self.inner.driver.conn().await?;
            c.document_filter(&DocumentFilterParams {
                filename_contains: filename,
                metadata,
            })
            .await?
        };
        Ok(Some(match document_ids {
            None => matching,
            Some(ids) => ids.into_iter().filter(|id| matching.contains(id)).collect(),
        }))
    }

    /// The best `k` chunks by cosine similarity to the query's vector.
    async fn vector_ranking(
        &self,
        query: &str,
        k: usize,
        document_ids: Option<Vec<Uuid>>,
    ) -> Result<Ranked, PipelineError> {
        let q = self
            .inner
            .embedder
            .embed(&[query.to_owned()])
            .await?
            .pop()
            .unwrap_or_default();
        self.vector_ranking_of(&q, k, document_ids).await
    }

    /// The best `k` chunks by cosine similarity to the vector `q` (of the running embedder):
    /// from the database's vector index (pgvector), else from docket's own index when this
    /// process has one that is built, else by a scan.
    pub async fn vector_ranking_of(
        &self,
        q: &[f32],
        k: usize,
        document_ids: Option<Vec<Uuid>>,
    ) -> Result<Ranked, PipelineError> {
        self.vector_ranking_with(q, k, document_ids, VectorPath::Auto)
            .await
    }

    /// [`Pipeline::vector_ranking_of`] the way `path` says (benchmarks compare them).
    pub async fn vector_ranking_with(
        &self,
        q: &[f32],
        k: usize,
        document_ids: Option<Vec<Uuid>>,
        path: VectorPath,
    ) -> Result<Ranked, PipelineError> {
        let fingerprint = self.inner.embedder.identity().fingerprint.clone();
        // docket's own index exists only where the database has no vector index of its own:
        // no need to ask it.
        if path != VectorPath::Scan && self.inner.ann.get().is_none() {
            let indexed = {
                let mut c = self.inner.driver.conn().await?;
                c.chunk_search(&ChunkSearchParams {
                    query: q.to_vec(),
                    k: k as i64,
                    document_ids: document_ids.clone(),
                    embedder_fingerprint: Some(fingerprint.clone()),
                })
                .await?
            };
            if let Some(hits) = indexed {
                return Ok(hits.into_iter().map(|h| (h.score, h.id)).collect());
            }
        }
        let index = self.inner.ann.get().filter(|i| i.ready());
        if let (Some(index), false) = (index, path == VectorPath::Scan) {
            let forced = path == VectorPath::Index;
            match self
                .ann_ranking(index, q, k, document_ids.clone(), forced)
                .await
            {
                Ok(Some(ranked)) => return Ok(ranked),
                Ok(None) => {}
                Err(e) if forced => return Err(e),
                // A search never fails for the index's sake: the scan answers instead.
                Err(e) => tracing::warn!(error = %e, "vector index search failed; scanning"),
            }
        }
        self.scan(q, k, document_ids, fingerprint).await
    }

    /// The index's candidates, ordered by the stored vectors; `None` where a scan is the
    /// better way (a scope of few chunks).
    ///
    /// Where the index is current (the common case) a search takes one connection from the
    /// pool, after the graph search: each connection taken costs round trips of its own, and
    /// SQLite's only connection is not held while the graph is searched.
    async fn ann_ranking(
        &self,
        index: &Arc<VectorIndex>,
        q: &[f32],
        k: usize,
        document_ids: Option<Vec<Uuid>>,
        forced: bool,
    ) -> Result<Option<Ranked>, PipelineError> {
        let mut current = false;
        'fresh: loop {
            // Taken first: what follows reads an index holding at least this much.
            let mark = index.mark();
            let allowed = document_ids
                .as_deref()
                .map(|ids| Arc::new(index.keys_of(ids)));
            let small = |a: &std::collections::HashSet<u64>| {
                a.len() <= ann::EXACT_MAX || a.len() * ann::EXACT_SHARE <= index.len()
            };
            if !forced && allowed.as_deref().is_some_and(small) {
                return Ok(None);
            }
            let held = allowed.as_ref().map_or_else(|| index.len(), |a| a.len());
            let mut want = (k * ann::OVERSAMPLE).max(ann::MIN_CANDIDATES);
            loop {
                // On a thread of its own: a graph search is milliseconds of CPU, and on the
                // runtime's threads it held up the other searches' I/O behind it.
                let candidates = {
                    let (index, query, allowed) = (index.clone(), q.to_vec(), allowed.clone());
                    tokio::task::spawn_blocking(move || {
                        index.candidates(&query, want, allowed.as_deref())
                    })
                    .await
                    .map_err(|e| {
                        PipelineError::SearchIndex(format!("searching the index: {e}"))
                    })??
                };
                let mut c = self.inner.driver.conn().await?;
                if !current {
                    current = index.current_on(&mut c, mark).await?;
                    if !current {
                        // Changes committed since the mark: apply them, then search the
                        // index again.
                        drop(c);
                        index.sync(&self.inner.driver).await?;
                        current = true;
                        continue 'fresh;
                    }
                }
                let rows = c
                    .chunk_vectors_page(&ChunkVectorPageParams {
                        document_ids: None,
                        embedder_fingerprint: Some(index.fingerprint().to_owned()),
                        after_id: 0,
                        limit: candidates.len() as i64,
                        chunk_ids: Some(candidates.clone()),
                    })
                    .await?;
                drop(c);
                if rows.len() < candidates.len() {
                    let live: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
                    let gone: Vec<i64> = candidates
                        .iter()
                        .copied()
                        .filter(|id| !live.contains(id))
                        .collect();
                    index.forget(&gone);
                }
                // Too few live candidates while the index holds more: look deeper.
                if rows.len() < k && candidates.len() == want && want < held {
                    want = (want * 4).min(held);
                    continue;
                }
                let mut ranked: Ranked = rows
                    .iter()
                    .filter(|v| v.embedding.len() == q.len())
                    .map(|v| (dot(&v.embedding, q), v.id))
                    .collect();
                ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                ranked.truncate(k);
                return Ok(Some(ranked));
            }
        }
    }

    /// The best `k` chunks by the database's text relevance.
    async fn text_ranking(
        &self,
        query: &str,
        k: usize,
        document_ids: Option<Vec<Uuid>>,
    ) -> Result<Ranked, PipelineError> {
        let mut c = self.inner.driver.conn().await?;
        Ok(c.chunk_text_search(&ChunkTextSearchParams {
            query: query.to_owned(),
            k: k as i64,
            document_ids,
        })
        .await?
        .into_iter()
        .map(|h| (h.score, h.id))
        .collect())
    }

    /// The portable vector search: every stored vector of the running embedder, in pages,
    /// keeping the best `k`.
    async fn scan(
        &self,
        q: &[f32],
        k: usize,
        document_ids: Option<Vec<Uuid>>,
        fingerprint: String,
    ) -> Result<Ranked, PipelineError> {
        let mut best: Ranked = Vec::with_capacity(k + 1);
        let mut after_id = 0;
        loop {
            let page = {
                let mut c = self.inner.driver.conn().await?;
                c.chunk_vectors_page(&ChunkVectorPageParams {
                    document_ids: document_ids.clone(),
                    embedder_fingerprint: Some(fingerprint.clone()),
                    after_id,
                    limit: 2048,
                    chunk_ids: None,
                })
                .await?
            };
            let Some(last) = page.last() else { break };
            after_id = last.id;
            for v in &page {
                if v.embedding.len() != q.len() {
                    continue; // cannot happen under one fingerprint; never rank it
                }
                let score = dot(&v.embedding, q);
                if best.len() < k || score > best[best.len() - 1].0 {
                    let at = best.partition_point(|(s, _)| *s >= score);
                    best.insert(at, (score, v.id));
                    best.truncate(k);
                }
            }
        }
        Ok(best)
    }
}

/// The dot product: cosine similarity of unit vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Reciprocal Rank Fusion of ranked lists: `Σ 1 / (RRF_K + rank)`, best first (ties by chunk
/// id, so the order is stable).
pub fn fuse(lists: &[&Ranked]) -> Ranked {
    let mut scores: HashMap<i64, f32> = HashMap::new();
    for list in lists {
        for (at, (_, id)) in list.iter().enumerate() {
            *scores.entry(*id).or_default() += 1.0 / (RRF_K + (at + 1) as f32);
        }
    }
    let mut fused: Ranked = scores.into_iter().map(|(id, s)| (s, id)).collect();
    fused.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement_and_keeps_every_chunk() {
        let vector: Ranked = vec![(0.9, 1), (0.8, 2), (0.7, 3)];
        let text: Ranked = vec![(12.0, 3), (11.0, 4), (10.0, 2)];
        let fused = fuse(&[&vector, &text]);
        let ids: Vec<i64> = fused.iter().map(|(_, id)| *id).collect();
        // 3: 1/13 + 1/11; 2: 1/12 + 1/13; 1: 1/11; 4: 1/12.
        assert_eq!(ids, vec![3, 2, 1, 4]);
        let expected = 1.0 / 13.0 + 1.0 / 11.0;
        assert!((fused[0].0 - expected).abs() < 1e-6, "{fused:?}");
        assert_eq!(
            fuse(&[&vector, &Vec::new()]).len(),
            3,
            "one list alone keeps its order"
        );
        assert!(fuse(&[]).is_empty());
    }

    #[test]
    fn a_first_place_outranks_a_middling_place_in_both_rankings() {
        // Chunk 1 is first by meaning and not found by words; chunk 99 is 15th in both.
        let mut vector: Ranked = vec![(0.9, 1)];
        let mut text: Ranked = Vec::new();
        for id in 100..113 {
            vector.push((0.5, id));
            text.push((5.0, id + 100));
        }
        vector.push((0.4, 99));
        text.push((4.0, 213));
        text.push((3.0, 99));
        assert_eq!(vector.iter().position(|(_, id)| *id == 99), Some(14));
        assert_eq!(text.iter().position(|(_, id)| *id == 99), Some(14));
        let fused = fuse(&[&vector, &text]);
        let at = |id: i64| fused.iter().position(|(_, x)| *x == id).unwrap();
        assert!(at(1) < at(99), "{fused:?}");
    }
}
