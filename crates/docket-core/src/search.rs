//! The params and rows of search in the document store: vectors (pages to scan, nearest
//! neighbours), full-text matches, document filters, and which embedder made each searchable
//! document's vectors (with re-embedding); see docs/search.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::document::check_limit;
use crate::{Error, Result};

/// A page of stored vectors of active generations, by chunk id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkVectorPageParams {
    /// Only these documents' chunks (an empty list matches none); `None` for every document.
    pub document_ids: Option<Vec<Uuid>>,
    /// Only documents whose active vectors this embedder made; `None` for any.
    pub embedder_fingerprint: Option<String>,
    /// Cursor: only chunk ids above this one (0 to start).
    pub after_id: i64,
    /// At most this many vectors.
    pub limit: i64,
    /// Only these chunks; `None` for every chunk.
    pub chunk_ids: Option<Vec<i64>>,
}

impl ChunkVectorPageParams {
    /// A negative limit is refused.
    pub fn validate(&self) -> Result<()> {
        check_limit(self.limit)
    }
}

/// Nearest chunks to a query vector, by cosine similarity, among the embedded chunks of
/// active generations whose vector has the query's dimensions
/// ([`crate::DocumentStore::chunk_search`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkSearchParams {
    /// The query vector: at least one component, every one finite.
    pub query: Vec<f32>,
    /// At most this many chunks.
    pub k: i64,
    /// Only these documents' chunks (an empty list matches none); `None` for every document.
    pub document_ids: Option<Vec<Uuid>>,
    /// Only documents whose active vectors this embedder made; `None` for any.
    pub embedder_fingerprint: Option<String>,
}

impl ChunkSearchParams {
    /// A negative `k`, an empty query or a query with a NaN or infinite component is refused.
    pub fn validate(&self) -> Result<()> {
        if self.k < 0 {
            return Err(Error::Invalid(format!("k {} is negative", self.k)));
        }
        if self.query.is_empty() {
            return Err(Error::Invalid("query vector is empty".into()));
        }
        if !self.query.iter().all(|x| x.is_finite()) {
            return Err(Error::Invalid(
                "query vector has a NaN or infinite component".into(),
            ));
        }
        Ok(())
    }
}

/// Chunks whose text matches a query's words, best first, among active generations
/// ([`crate::DocumentStore::chunk_text_search`]). The words are [`text_terms`] of `query`; a
/// chunk matches when it has any of them (stemmed: "running" finds "runs"), and ranks higher
/// the more, and the rarer, they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkTextSearchParams {
    /// What a person typed; anything goes (operators and quotes are words like any other).
    pub query: String,
    /// At most this many chunks.
    pub k: i64,
    /// Only these documents' chunks (an empty list matches none); `None` for every document.
    pub document_ids: Option<Vec<Uuid>>,
}

impl ChunkTextSearchParams {
    /// A negative `k` is refused.
    pub fn validate(&self) -> Result<()> {
        if self.k < 0 {
            return Err(Error::Invalid(format!("k {} is negative", self.k)));
        }
        Ok(())
    }
}

/// Searchable documents (with an active generation) by file name and metadata
/// ([`crate::DocumentStore::document_filter`]): the ids search is then restricted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentFilterParams {
    /// Only documents whose file name contains this (case-insensitive for ASCII letters).
    pub filename_contains: Option<String>,
    /// Only documents whose metadata contains this object ([`json_contains`]).
    pub metadata: Option<serde_json::Value>,
}

impl DocumentFilterParams {
    /// `metadata` must be an object; an empty `filename_contains` is refused.
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = &self.metadata
            && !m.is_object()
        {
            return Err(Error::Invalid(
                "the metadata filter must be a JSON object".into(),
            ));
        }
        if self.filename_contains.as_deref() == Some("") {
            return Err(Error::Invalid(
                "the file name filter must not be empty".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `doc` contains `filter`, as PostgreSQL's `jsonb @>` decides: an object contains
/// another when each of the other's keys is present with a contained value; an array
/// contains another when each of the other's elements is contained in one of its own;
/// scalars must be equal (numbers by value: `1` is `1.0`). (PostgreSQL's exception for a
/// scalar inside a top-level array does not arise: filters are objects.)
pub fn json_contains(doc: &serde_json::Value, filter: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (doc, filter) {
        (Value::Object(d), Value::Object(f)) => f
            .iter()
            .all(|(k, fv)| d.get(k).is_some_and(|dv| json_contains(dv, fv))),
        (Value::Array(d), Value::Array(f)) => {
            f.iter().all(|fv| d.iter().any(|dv| json_contains(dv, fv)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (d, f) => d == f,
    }
}

/// The most words [`text_terms`] keeps.
pub const TEXT_TERMS_MAX: usize = 32;

/// The words of a text query as every backend searches them: runs of letters and digits,
/// lowercased, each once, in order, at most [`TEXT_TERMS_MAX`]. Nothing else of the query
/// reaches the database's query syntax.
pub fn text_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
            if terms.len() == TEXT_TERMS_MAX {
                break;
            }
        }
    }
    terms
}

/// One chunk found by [`crate::DocumentStore::chunk_search`] or
/// [`crate::DocumentStore::chunk_text_search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkScore {
    /// The chunk.
    pub id: i64,
    /// Its document.
    pub document_id: Uuid,
    /// Cosine similarity to the query (1 − cosine distance): 1 for the same direction.
    pub score: f32,
}

/// Searchable documents by the embedder that made their active vectors
/// ([`crate::DocumentStore::document_embedders`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderCount {
    /// The embedder's name (`DocumentRow::embedder`).
    pub embedder: Option<String>,
    /// Its fingerprint; `None` for documents activated before fingerprints were recorded.
    pub embedder_fingerprint: Option<String>,
    /// Whether these documents have finished processing (completed, failed or cancelled);
    /// the others are being processed again (a new generation is on its way).
    pub finished: bool,
    /// How many.
    pub documents: i64,
}

/// Gives documents activated before fingerprints were recorded the fingerprint of the
/// embedder of the same name ([`crate::DocumentStore::document_embedder_adopt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderAdoptParams {
    /// The embedder's name, as recorded in `DocumentRow::embedder`.
    pub embedder: String,
    /// The fingerprint to record for documents of that name that have none.
    pub embedder_fingerprint: String,
}

/// Starts re-embedding finished documents whose active vectors another embedder made
/// ([`crate::DocumentStore::document_reembed`]): for each, a new generation holding a copy of
/// the active generation's parsed text, and of its chunks (without vectors) when
/// `chunker_fingerprint` matches the one they were made with; status `embedding` (chunks
/// copied) or `chunking` (to be chunked again). The active generation stays searchable until
/// the new one is activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentReembedParams {
    /// The running embedder: documents whose active vectors it made are left alone.
    pub embedder_fingerprint: String,
    /// The running chunker: chunks made by it are copied, not made again.
    pub chunker_fingerprint: String,
    /// At most this many documents, oldest (by id) first.
    pub limit: i64,
    /// Cursor: only documents with ids above this one (`None` to start).
    pub after: Option<Uuid>,
    /// `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

impl DocumentReembedParams {
    /// A negative limit is refused.
    pub fn validate(&self) -> Result<()> {
        check_limit(self.limit)
    }
}

/// The most dimensions [`crate::DocumentStore::vector_index_ensure`] accepts.
pub const VECTOR_INDEX_MAX_DIMS: i32 = 16_000;

/// Checks the dimensions of a vector index: within `1..=`[`VECTOR_INDEX_MAX_DIMS`].
pub fn validate_vector_index_dims(dims: i32) -> Result<()> {
    if !(1..=VECTOR_INDEX_MAX_DIMS).contains(&dims) {
        return Err(Error::Invalid(format!(
            "vector index dimensions {dims} are outside 1..={VECTOR_INDEX_MAX_DIMS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_containment_is_jsonb_containment() {
        use serde_json::json;
        let doc = json!({"team": "ops", "n": 1, "tags": ["a", "b"], "deep": {"x": {"y": true}}});
        for (filter, expected) in [
            (json!({}), true),
            (json!({"team": "ops"}), true),
            (json!({"team": "Ops"}), false),
            (json!({"n": 1.0}), true),
            (json!({"n": "1"}), false),
            (json!({"tags": ["b"]}), true),
            (json!({"tags": ["b", "c"]}), false),
            (json!({"tags": "a"}), false),
            (json!({"tags": [["a"]]}), false),
            (json!({"deep": {"x": {}}}), true),
            (json!({"deep": {"x": {"y": false}}}), false),
            (json!({"missing": null}), false),
        ] {
            assert_eq!(json_contains(&doc, &filter), expected, "{filter}");
        }
    }

    #[test]
    fn text_terms_are_words_only() {
        assert_eq!(
            text_terms(r#"Ünïcode "OR" NEAR(a b) x:y * -z c++ OR or ÜNÏCODE 42"#),
            vec!["ünïcode", "or", "near", "a", "b", "x", "y", "z", "c", "42"]
        );
        assert!(text_terms("  ...  \"\" ()*").is_empty());
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(text_terms(&many).len(), TEXT_TERMS_MAX);
    }

    #[test]
    fn chunk_search_params_and_index_dims_are_checked() {
        let ok = ChunkSearchParams {
            query: vec![0.5, -1.0],
            k: 0,
            document_ids: None,
            embedder_fingerprint: None,
        };
        assert!(ok.validate().is_ok());
        let bad = [
            ChunkSearchParams {
                k: -1,
                ..ok.clone()
            },
            ChunkSearchParams {
                query: vec![],
                ..ok.clone()
            },
            ChunkSearchParams {
                query: vec![1.0, f32::NAN],
                ..ok.clone()
            },
            ChunkSearchParams {
                query: vec![f32::INFINITY],
                ..ok.clone()
            },
        ];
        for p in bad {
            assert!(matches!(p.validate(), Err(Error::Invalid(_))), "{p:?}");
        }
        assert!(validate_vector_index_dims(1).is_ok());
        assert!(validate_vector_index_dims(VECTOR_INDEX_MAX_DIMS).is_ok());
        for dims in [0, -3, VECTOR_INDEX_MAX_DIMS + 1] {
            assert!(matches!(
                validate_vector_index_dims(dims),
                Err(Error::Invalid(_))
            ));
        }
    }
}

/// A cursor over the log of changes to what vector search ranks
/// ([`crate::DocumentStore::search_index_changes`]): entries after `(after_seq,
/// after_document)`, in clock order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchIndexChangesParams {
    /// The clock number of the last entry read (0 to start).
    pub after_seq: i64,
    /// The document of the last entry read (nil to start).
    pub after_document: Uuid,
    /// At most this many entries.
    pub limit: i64,
}

impl SearchIndexChangesParams {
    /// A negative limit is refused.
    pub fn validate(&self) -> Result<()> {
        check_limit(self.limit)
    }
}

/// A document whose searchable vectors changed (activated, adopted by an embedder, deleted),
/// and its state now.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchIndexChange {
    /// The clock number the change committed under.
    pub seq: i64,
    /// The document.
    pub document_id: Uuid,
    /// Whether it exists and has an active generation; `false` once deleted.
    pub searchable: bool,
    /// The embedder of its active vectors.
    pub embedder_fingerprint: Option<String>,
    /// Chunks in its active generation (0 once deleted).
    pub chunk_count: i64,
}
