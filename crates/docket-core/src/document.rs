//! The rows the document store keeps: documents, their parsed texts and their chunks (with
//! embedding vectors), and the params structs of the [`Executor`](crate::Executor) methods
//! that read and write them.
//!
//! A document is processed under a **generation**: its parsed text and chunks are written
//! under the document's current `generation`, and search sees only the chunks of its
//! `active_generation`. Reprocessing bumps `generation` (the old chunks stay searchable);
//! [`DocumentActivateParams`] makes the new generation the active one and drops every other,
//! in one call. Every stage update names the generation it works for, so a stage of a
//! superseded run cannot overwrite a newer one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Error, PRIORITY_MAX, PRIORITY_MIN, Result};

/// Where a document is in its processing. Stored as lowercase text (`status` column).
///
/// ```text
/// queued ─▶ parsing ─▶ chunking ─▶ embedding ─▶ completing ─▶ notifying ─▶ completed
///              └──────────┴────────────┴────────────┴─────────────┴──────▶ failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Accepted; its first stage has not started.
    Queued,
    /// The text is being extracted.
    Parsing,
    /// The text is being split into chunks.
    Chunking,
    /// The chunks are being embedded.
    Embedding,
    /// The new generation is being made the searchable one.
    Completing,
    /// The caller's callback is being notified.
    Notifying,
    /// Done: its active generation is searchable.
    Completed,
    /// A stage failed for good; `error` and `error_stage` say why and where.
    Failed,
    /// An operator cancelled it (or a job of its pipeline); nothing revives it but a
    /// reprocess.
    Cancelled,
}

impl DocumentStatus {
    /// Every status, in processing order.
    pub const ALL: [DocumentStatus; 9] = [
        DocumentStatus::Queued,
        DocumentStatus::Parsing,
        DocumentStatus::Chunking,
        DocumentStatus::Embedding,
        DocumentStatus::Completing,
        DocumentStatus::Notifying,
        DocumentStatus::Completed,
        DocumentStatus::Failed,
        DocumentStatus::Cancelled,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Queued => "queued",
            DocumentStatus::Parsing => "parsing",
            DocumentStatus::Chunking => "chunking",
            DocumentStatus::Embedding => "embedding",
            DocumentStatus::Completing => "completing",
            DocumentStatus::Notifying => "notifying",
            DocumentStatus::Completed => "completed",
            DocumentStatus::Failed => "failed",
            DocumentStatus::Cancelled => "cancelled",
        }
    }

    /// Whether processing has ended (completed, failed or cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DocumentStatus::Completed | DocumentStatus::Failed | DocumentStatus::Cancelled
        )
    }
}

impl fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DocumentStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DocumentStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::Decode(format!("unknown document status {s:?}")))
    }
}

/// How a document arrived. Stored as lowercase text (`source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentSource {
    /// Uploaded through the API.
    Upload,
    /// Fetched from a URL.
    Url,
    /// Announced by a storage webhook.
    Webhook,
}

impl DocumentSource {
    /// Every source.
    pub const ALL: [DocumentSource; 3] = [
        DocumentSource::Upload,
        DocumentSource::Url,
        DocumentSource::Webhook,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentSource::Upload => "upload",
            DocumentSource::Url => "url",
            DocumentSource::Webhook => "webhook",
        }
    }
}

impl fmt::Display for DocumentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DocumentSource {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DocumentSource::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| Error::Decode(format!("unknown document source {s:?}")))
    }
}

/// One document, as stored in `documents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRow {
    /// Identity: a UUID v7 chosen by the caller, so ids sort by creation time.
    pub id: Uuid,
    /// How it arrived.
    pub source: DocumentSource,
    /// The original file name, if known.
    pub filename: Option<String>,
    /// The declared or detected media type, if known.
    pub content_type: Option<String>,
    /// The original's size.
    pub size_bytes: i64,
    /// SHA-256 of the original, lowercase hex.
    pub sha256: String,
    /// Where the original is kept in the object store.
    pub storage_key: String,
    /// Where its processing is.
    pub status: DocumentStatus,
    /// 0–100, for people watching.
    pub progress: i16,
    /// The current (or last) stage: `parse`, `chunk`, `embed`, `complete`, `notify`.
    pub stage: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The stage that failed.
    pub error_stage: Option<String>,
    /// Milliseconds per stage of the current generation, e.g. `{"parse_ms": 12}`.
    pub timings: serde_json::Value,
    /// Where to report the outcome.
    pub callback_url: Option<String>,
    /// The caller's metadata (a JSON object).
    pub metadata: serde_json::Value,
    /// 0–10, the priority of its jobs.
    pub priority: i16,
    /// The generation being (or last) processed; texts and chunks are written under it.
    pub generation: i32,
    /// The generation search sees; `None` until the first completion.
    pub active_generation: Option<i32>,
    /// Chunks of the active generation.
    pub chunk_count: i32,
    /// Tokens over those chunks.
    pub token_count: i64,
    /// The embedding model of the active generation's vectors.
    pub embedder: Option<String>,
    /// The fingerprint of the embedder that made the active generation's vectors; search
    /// ranks a document only under the running embedder's fingerprint. `None` for documents
    /// activated before fingerprints were recorded (until adopted) and never activated ones.
    pub embedder_fingerprint: Option<String>,
    /// How the active generation was chunked (sizes and tokenizer): re-embedding keeps its
    /// chunks only while this matches.
    pub chunker_fingerprint: Option<String>,
    /// The fingerprint of the embedder whose vectors the current `generation` holds so far:
    /// every embedded chunk of that generation was made by it.
    pub generation_embedder: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// When its processing last completed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A document's parsed text, one per generation (`document_texts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentText {
    /// The document.
    pub document_id: Uuid,
    /// The generation it was parsed under.
    pub generation: i32,
    /// The text's format (`markdown`, `text` …).
    pub format: String,
    /// The text; chunk offsets count characters in it.
    pub text: String,
    /// The parser's section outline (a JSON array).
    pub sections: serde_json::Value,
}

/// A chunk to store ([`crate::DocumentStore::chunk_replace`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkInsert {
    /// Position within the document, from 0.
    pub chunk_index: i32,
    /// The chunk's text.
    pub text: String,
    /// First character (not byte) of the chunk in the parsed text.
    pub char_start: i32,
    /// One past its last character.
    pub char_end: i32,
    /// Tokens in the chunk.
    pub token_count: i32,
    /// The headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// The page it starts on, when the format has pages.
    pub page: Option<i32>,
}

/// A stored chunk, without its vector (`document_chunks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRow {
    /// Identity, increasing with insertion, never reused.
    pub id: i64,
    /// The document.
    pub document_id: Uuid,
    /// The generation it belongs to.
    pub generation: i32,
    /// Position within the document, from 0.
    pub chunk_index: i32,
    /// The chunk's text.
    pub text: String,
    /// First character of the chunk in the parsed text.
    pub char_start: i32,
    /// One past its last character.
    pub char_end: i32,
    /// Tokens in the chunk.
    pub token_count: i32,
    /// The headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// The page it starts on.
    pub page: Option<i32>,
    /// Whether its embedding is stored.
    pub has_embedding: bool,
}

impl ChunkRow {
    /// The chunk as [`crate::DocumentStore::chunk_replace`] takes it (without its vector).
    pub fn into_insert(self) -> ChunkInsert {
        ChunkInsert {
            chunk_index: self.chunk_index,
            text: self.text,
            char_start: self.char_start,
            char_end: self.char_end,
            token_count: self.token_count,
            heading_path: self.heading_path,
            page: self.page,
        }
    }
}

/// A chunk's vector, for building a search index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkVector {
    /// The chunk.
    pub id: i64,
    /// Its document.
    pub document_id: Uuid,
    /// The embedding.
    pub embedding: Vec<f32>,
}

/// A vector as stored (`embedding` column): each component as an `f32`, little-endian,
/// 4 bytes each, in order. The same bytes on every backend and host.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Reads a vector stored by [`encode_vector`]; a length that is not a multiple of 4 is
/// [`Error::Decode`].
pub fn decode_vector(b: &[u8]) -> Result<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(Error::Decode(format!(
            "embedding of {} bytes is not a whole number of f32s",
            b.len()
        )));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn check_progress(progress: i16) -> Result<()> {
    if !(0..=100).contains(&progress) {
        return Err(Error::Invalid(format!(
            "progress {progress} is outside 0..=100"
        )));
    }
    Ok(())
}

pub(crate) fn check_limit(limit: i64) -> Result<()> {
    if limit < 0 {
        return Err(Error::Invalid(format!("limit {limit} is negative")));
    }
    Ok(())
}

fn check_timing(timing: &Option<(String, i64)>) -> Result<()> {
    if let Some((key, _)) = timing
        && key.is_empty()
    {
        return Err(Error::Invalid("timing key must not be empty".into()));
    }
    Ok(())
}

/// A new document: `queued`, progress 0, generation 1, nothing active yet.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentInsertParams {
    /// Its id, a UUID v7 (so that listing newest first is ordering by id).
    pub id: Uuid,
    /// How it arrived.
    pub source: DocumentSource,
    /// The original file name.
    pub filename: Option<String>,
    /// The media type.
    pub content_type: Option<String>,
    /// The original's size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the original: 64 lowercase hex digits.
    pub sha256: String,
    /// Where the original is kept.
    pub storage_key: String,
    /// Where to report the outcome.
    pub callback_url: Option<String>,
    /// The caller's metadata: a JSON object.
    pub metadata: serde_json::Value,
    /// 0–10.
    pub priority: i16,
    /// `created_at` and `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

impl DocumentInsertParams {
    /// Checks the fields every driver would otherwise store unchecked.
    pub fn validate(&self) -> Result<()> {
        if self.size_bytes < 0 {
            return Err(Error::Invalid(format!(
                "size_bytes {} is negative",
                self.size_bytes
            )));
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::Invalid(format!(
                "sha256 {:?} is not 64 lowercase hex digits",
                self.sha256
            )));
        }
        if self.storage_key.is_empty() {
            return Err(Error::Invalid("storage_key must not be empty".into()));
        }
        if !self.metadata.is_object() {
            return Err(Error::Invalid("metadata must be a JSON object".into()));
        }
        if !(PRIORITY_MIN..=PRIORITY_MAX).contains(&self.priority) {
            return Err(Error::Invalid(format!(
                "priority {} is outside {PRIORITY_MIN}..={PRIORITY_MAX}",
                self.priority
            )));
        }
        Ok(())
    }
}

/// List documents, newest first (by id), filtered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocumentListParams {
    /// Only this status.
    pub status: Option<DocumentStatus>,
    /// Only this source.
    pub source: Option<DocumentSource>,
    /// Cursor: only ids below this one (the last id of the previous page).
    pub before: Option<Uuid>,
    /// At most this many rows.
    pub limit: i64,
}

impl DocumentListParams {
    /// A negative limit is refused.
    pub fn validate(&self) -> Result<()> {
        check_limit(self.limit)
    }
}

/// A stage starts or moves on: applies only while the document is still at `generation`.
///
/// Sets `status`, `stage` and `progress` (as given: a new stage may restart the bar), merges
/// `timing` into `timings`, and clears `error`/`error_stage` unless `status` is `failed`.
/// A `completed` status sets `completed_at` unless it is set.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentStageParams {
    /// The document.
    pub id: Uuid,
    /// The generation the caller works for.
    pub generation: i32,
    /// The new status.
    pub status: DocumentStatus,
    /// The stage name.
    pub stage: Option<String>,
    /// 0–100.
    pub progress: i16,
    /// `(key, milliseconds)` to set in `timings`, e.g. `("parse_ms", 12)`.
    pub timing: Option<(String, i64)>,
    /// `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

impl DocumentStageParams {
    /// Progress must be within 0..=100.
    pub fn validate(&self) -> Result<()> {
        check_progress(self.progress)?;
        check_timing(&self.timing)
    }
}

/// Progress within a stage: raises `progress` (never lowers it), only while the document is at
/// `generation` and not completed or failed.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentProgressParams {
    /// The document.
    pub id: Uuid,
    /// The generation the caller works for.
    pub generation: i32,
    /// 0–100.
    pub progress: i16,
    /// When set, records it as `generation_embedder`: the embedder whose vectors this
    /// generation holds.
    pub generation_embedder: Option<String>,
    /// `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

impl DocumentProgressParams {
    /// Progress must be within 0..=100.
    pub fn validate(&self) -> Result<()> {
        check_progress(self.progress)
    }
}

/// A stage failed for good: `failed`, with the reason and the stage. Applies only while the
/// document is at `generation`.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentFailParams {
    /// The document.
    pub id: Uuid,
    /// The generation the caller works for.
    pub generation: i32,
    /// The failing stage (becomes `stage` and `error_stage`).
    pub stage: String,
    /// What went wrong.
    pub error: String,
    /// `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

/// Makes `generation` the searchable one, in one call: records its counts and embedder, sets
/// `status` and `progress` (and `completed_at` when `status` is `completed`), merges `timing`,
/// and deletes the texts and chunks of every other generation of the document. Applies only
/// while the document is at `generation`.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentActivateParams {
    /// The document.
    pub id: Uuid,
    /// The generation to activate: the document's current one.
    pub generation: i32,
    /// Its chunks.
    pub chunk_count: i32,
    /// Its tokens.
    pub token_count: i64,
    /// The embedding model of its vectors.
    pub embedder: Option<String>,
    /// That embedder's fingerprint.
    pub embedder_fingerprint: Option<String>,
    /// How its chunks were made.
    pub chunker_fingerprint: Option<String>,
    /// `(key, milliseconds)` to set in `timings`.
    pub timing: Option<(String, i64)>,
    /// The new status (`completed`, or `notifying` when a callback follows).
    pub status: DocumentStatus,
    /// 0–100.
    pub progress: i16,
    /// `updated_at` (and `completed_at`); `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

impl DocumentActivateParams {
    /// Progress must be within 0..=100; counts must not be negative.
    pub fn validate(&self) -> Result<()> {
        check_progress(self.progress)?;
        check_timing(&self.timing)?;
        if self.chunk_count < 0 || self.token_count < 0 {
            return Err(Error::Invalid(
                "chunk and token counts must not be negative".into(),
            ));
        }
        Ok(())
    }
}

/// Processes a document again: a new generation, `queued`, progress 0, stage, errors, timings
/// and `completed_at` cleared. The active generation stays searchable until the new one is
/// activated; texts and chunks of any other unfinished generation are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentReprocessParams {
    /// The document.
    pub id: Uuid,
    /// `updated_at`; `None` is the database's clock.
    pub now: Option<DateTime<Utc>>,
}

/// Documents that stopped moving: not completed or failed, unchanged since `updated_before`,
/// and with no live job (queued, running or retrying) whose unique key starts with
/// `document:<id>:`. Oldest (`updated_at`) first.
#[derive(Debug, Clone, PartialEq)]
pub struct StuckDocumentsParams {
    /// Unchanged since before this.
    pub updated_before: DateTime<Utc>,
    /// At most this many rows.
    pub limit: i64,
}

impl StuckDocumentsParams {
    /// A negative limit is refused.
    pub fn validate(&self) -> Result<()> {
        check_limit(self.limit)
    }
}

/// One generation of one document: the key of its parsed text
/// ([`crate::DocumentStore::document_text_get`]) and of its chunks' embedding count
/// ([`crate::DocumentStore::chunk_count_embedded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationKey {
    /// The document.
    pub document_id: Uuid,
    /// Its generation.
    pub generation: i32,
}

impl GenerationKey {
    /// Generation `generation` of document `document_id`.
    pub fn new(document_id: Uuid, generation: i32) -> Self {
        Self {
            document_id,
            generation,
        }
    }
}

/// Replace a generation's chunks ([`crate::DocumentStore::chunk_replace`]).
#[derive(Debug, Clone, Copy)]
pub struct ChunkReplaceParams<'a> {
    /// The document.
    pub document_id: Uuid,
    /// The generation whose chunks these are.
    pub generation: i32,
    /// The chunks, without embeddings.
    pub chunks: &'a [ChunkInsert],
}

/// A page of a generation's chunks, by `chunk_index` ([`crate::DocumentStore::chunk_list`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkListParams {
    /// The document.
    pub document_id: Uuid,
    /// The generation; `None` for the active one (no chunks while nothing is active).
    pub generation: Option<i32>,
    /// At most this many chunks.
    pub limit: i64,
    /// Skip this many first.
    pub offset: i64,
}

/// A generation's chunks still without an embedding, by `chunk_index`
/// ([`crate::DocumentStore::chunk_list_unembedded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkListUnembeddedParams {
    /// The document.
    pub document_id: Uuid,
    /// The generation.
    pub generation: i32,
    /// At most this many chunks.
    pub limit: i64,
}

/// The most ids [`crate::DocumentStore::document_ids_present`] takes in one call.
pub const MAX_IDS_PRESENT: usize = 1000;

/// Checks the ids of one [`crate::DocumentStore::document_ids_present`] call.
pub fn check_ids_present(ids: &[Uuid]) -> Result<()> {
    if ids.len() > MAX_IDS_PRESENT {
        return Err(Error::Invalid(format!(
            "document_ids_present takes at most {MAX_IDS_PRESENT} ids (got {})",
            ids.len()
        )));
    }
    Ok(())
}

/// The unique-key prefix of a document's stage jobs: `document:<id>:`. A stage job's key is
/// this prefix and the stage name; [`StuckDocumentsParams`] relies on it.
pub fn document_job_key_prefix(id: Uuid) -> String {
    format!("document:{}:", id.hyphenated())
}

/// Checks a text before it is stored: `sections` must be a JSON array.
pub fn validate_document_text(t: &DocumentText) -> Result<()> {
    if !t.sections.is_array() {
        return Err(Error::Invalid("sections must be a JSON array".into()));
    }
    Ok(())
}

/// Checks chunks before they are stored: unique indexes, offsets in order, counts not
/// negative.
pub fn validate_chunks(chunks: &[ChunkInsert]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(chunks.len());
    for c in chunks {
        if c.chunk_index < 0 {
            return Err(Error::Invalid(format!(
                "chunk_index {} is negative",
                c.chunk_index
            )));
        }
        if !seen.insert(c.chunk_index) {
            return Err(Error::Invalid(format!(
                "chunk_index {} appears twice",
                c.chunk_index
            )));
        }
        if c.char_start < 0 || c.char_end < c.char_start {
            return Err(Error::Invalid(format!(
                "chunk {}: character range {}..{} is invalid",
                c.chunk_index, c.char_start, c.char_end
            )));
        }
        if c.token_count < 0 {
            return Err(Error::Invalid(format!(
                "chunk {}: token_count {} is negative",
                c.chunk_index, c.token_count
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_bit_for_bit() {
        let v = [0.0f32, -0.0, 1.5, f32::MIN_POSITIVE, f32::MAX, -3.25e-7];
        let b = encode_vector(&v);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[8..12], &1.5f32.to_le_bytes());
        let back = decode_vector(&b).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&v));
        assert!(decode_vector(&[]).unwrap().is_empty());
        assert!(matches!(decode_vector(&[1, 2, 3]), Err(Error::Decode(_))));
    }

    #[test]
    fn statuses_and_sources_parse_their_text() {
        for s in DocumentStatus::ALL {
            assert_eq!(s.as_str().parse::<DocumentStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in DocumentSource::ALL {
            assert_eq!(s.as_str().parse::<DocumentSource>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("done".parse::<DocumentStatus>().is_err());
        assert!(DocumentStatus::Failed.is_terminal());
        assert!(!DocumentStatus::Notifying.is_terminal());
    }
}
