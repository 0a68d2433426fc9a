//! The chunk stage's splitter: token-aware, structure-aware, with overlap.
//!
//! Chunks never cross a [`Section`] (a heading's span, a PDF page), so each one carries the
//! heading path and page it came from. Within a section, `text-splitter` picks the largest
//! semantic units that fit (Markdown blocks for Markdown; paragraphs, sentences, words
//! otherwise), sized by the embedding model's own tokenizer.

use std::sync::Arc;

use docket_core::ChunkInsert;
use docket_embed::Embedder;
use docket_parse::{Format, Parsed};
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

/// Sizes text by an embedder's tokenizer.
#[derive(Clone)]
pub struct EmbedderSizer(pub Arc<dyn Embedder>);

impl ChunkSizer for EmbedderSizer {
    fn size(&self, chunk: &str) -> usize {
        self.0.count_tokens(chunk)
    }
}

/// Splits parsed documents into chunks.
#[derive(Clone)]
pub struct Chunker {
    sizer: EmbedderSizer,
    max_tokens: usize,
    overlap_tokens: usize,
    fingerprint: String,
}

/// The version of the splitting scheme: bump it with any change to how chunks are cut.
const CHUNKER_VERSION: u32 = 1;

fn chunker_fingerprint(embedder: &Arc<dyn Embedder>, max_tokens: usize, overlap: usize) -> String {
    use sha2::{Digest, Sha256};
    let spec = &embedder.identity().spec;
    let described = serde_json::json!({
        "version": CHUNKER_VERSION,
        "max_tokens": max_tokens,
        "overlap_tokens": overlap,
        "tokenizer": [spec.provider, spec.model, spec.revision],
    });
    let digest = Sha256::digest(described.to_string().as_bytes());
    format!("chunker-{}", hex::encode(&digest[..8]))
}

/// A chunker that cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid chunking settings: {0}")]
pub struct ChunkerError(String);

impl Chunker {
    /// Chunks of at most `max_tokens` (capped at what the embedder accepts), overlapping their
    /// neighbours by up to `overlap_tokens`.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        max_tokens: usize,
        overlap_tokens: usize,
    ) -> Result<Self, ChunkerError> {
        let max_tokens = max_tokens.min(embedder.max_input_tokens());
        if max_tokens == 0 {
            return Err(ChunkerError("max_tokens must be above 0".into()));
        }
        if overlap_tokens >= max_tokens {
            return Err(ChunkerError(format!(
                "overlap ({overlap_tokens} tokens) must be below the chunk size ({max_tokens})"
            )));
        }
        let fingerprint = chunker_fingerprint(&embedder, max_tokens, overlap_tokens);
        Ok(Self {
            sizer: EmbedderSizer(embedder),
            max_tokens,
            overlap_tokens,
            fingerprint,
        })
    }

    /// What decides this chunker's chunks: `chunker-{16 hex digits}` over the splitting
    /// scheme's version, the effective size and overlap, and the tokenizer that counts them
    /// (the embedder's provider, model and revision; not its dimensions). Re-embedding keeps
    /// a document's chunks while this matches the one they were made with.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The effective chunk size in tokens.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn config(&self) -> ChunkConfig<EmbedderSizer> {
        ChunkConfig::new(self.max_tokens)
            .with_sizer(self.sizer.clone())
            .with_overlap(self.overlap_tokens)
            .expect("overlap checked in new()")
    }

    /// Splits `parsed` into chunks, numbered from 0, with character offsets into
    /// `parsed.text`.
    pub fn chunk(&self, parsed: &Parsed) -> Vec<ChunkInsert> {
        let text = parsed.text.as_str();
        let mut out = Vec::new();
        // Character offset of byte `char_base_byte`, advanced section by section.
        let (mut char_base_byte, mut char_base) = (0usize, 0usize);
        let mut char_offset_of = |byte: usize| -> usize {
            if byte >= char_base_byte {
                char_base += text[char_base_byte..byte].chars().count();
            } else {
                char_base = text[..byte].chars().count();
            }
            char_base_byte = byte;
            char_base
        };
        let whole = [docket_parse::Section {
            start: 0,
            end: text.len(),
            heading_path: Vec::new(),
            page: None,
        }];
        let sections = if parsed.sections.is_empty() {
            &whole[..]
        } else {
            &parsed.sections[..]
        };
        let markdown = parsed.format == Format::Markdown;
        let (md, plain) = if markdown {
            (Some(MarkdownSplitter::new(self.config())), None)
        } else {
            (None, Some(TextSplitter::new(self.config())))
        };
        for section in sections {
            let (start, end) = (section.start.min(text.len()), section.end.min(text.len()));
            if start >= end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
                continue;
            }
            let body = &text[start..end];
            let section_chars = char_offset_of(start);
            let pieces: Vec<(usize, &str)> = match (&md, &plain) {
                (Some(s), _) => s
                    .chunk_char_indices(body)
                    .map(|c| (c.char_offset, c.chunk))
                    .collect(),
                (_, Some(s)) => s
                    .chunk_char_indices(body)
                    .map(|c| (c.char_offset, c.chunk))
                    .collect(),
                _ => unreachable!(),
            };
            for (char_in_section, piece) in pieces {
                if piece.trim().is_empty() {
                    continue;
                }
                let char_start = section_chars + char_in_section;
                let char_end = char_start + piece.chars().count();
                out.push(ChunkInsert {
                    chunk_index: out.len() as i32,
                    text: piece.to_owned(),
                    char_start: char_start as i32,
                    char_end: char_end as i32,
                    token_count: self.sizer.size(piece) as i32,
                    heading_path: section.heading_path.clone(),
                    page: section.page.map(|p| p as i32),
                });
            }
        }
        out
    }
}
