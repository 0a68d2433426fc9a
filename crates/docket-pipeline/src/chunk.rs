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
const CHUNKER_VERSION: u32 = 2;

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
        self.join_lone_headings(text, out)
    }

    /// Joins a chunk that is headings alone to the chunk after it when both fit in one, so
    /// that no chunk is a heading without its text; offsets stay exact (a chunk's text is
    /// always `text[char_start..char_end]`).
    fn join_lone_headings(&self, text: &str, chunks: Vec<ChunkInsert>) -> Vec<ChunkInsert> {
        if chunks.len() < 2 {
            return chunks;
        }
        // Character offsets to bytes, walking forward from the last one asked (chunks come in
        // order), from the start again when asked for an earlier one.
        let mut at = (0usize, 0usize); // (char, byte)
        let mut byte_of = |ch: usize| -> usize {
            if ch < at.0 {
                at = (0, 0);
            }
            let skip = ch - at.0;
            let byte = at.1
                + text[at.1..]
                    .char_indices()
                    .nth(skip)
                    .map_or(text.len() - at.1, |(b, _)| b);
            at = (ch, byte);
            byte
        };
        let mut slice = |from: i32, to: i32| {
            let (a, b) = (byte_of(from as usize), byte_of(to as usize));
            &text[a..b]
        };
        let mut out: Vec<ChunkInsert> = Vec::with_capacity(chunks.len());
        for mut c in chunks {
            if let Some(prev) = out.last()
                && is_heading_alone(prev)
                && c.char_start >= prev.char_start
            {
                let joined = slice(prev.char_start, c.char_end);
                let tokens = self.sizer.size(joined);
                if tokens <= self.max_tokens {
                    let prev = out.pop().expect("checked");
                    c.char_start = prev.char_start;
                    c.text = joined.to_owned();
                    c.token_count = tokens as i32;
                    if c.page.is_none() {
                        c.page = prev.page;
                    }
                }
            }
            out.push(c);
        }
        for (i, c) in out.iter_mut().enumerate() {
            c.chunk_index = i as i32;
        }
        out
    }
}

/// Whether a chunk is only headings: every line a Markdown heading (`#` …) or one of its
/// heading path's titles.
fn is_heading_alone(c: &ChunkInsert) -> bool {
    let mut lines = c
        .text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    lines.peek().is_some()
        && lines.all(|l| {
            let bare = l.trim_start_matches('#').trim();
            !bare.is_empty()
                && (l.starts_with('#') || c.heading_path.iter().any(|h| h.trim() == bare))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_embed::hashing::{HashingConfig, HashingEmbedder};
    use docket_parse::{Format, Parsed, Section};

    fn chunker(max: usize, overlap: usize) -> Chunker {
        Chunker::new(
            Arc::new(HashingEmbedder::new(HashingConfig::default())),
            max,
            overlap,
        )
        .unwrap()
    }

    fn check_offsets(parsed: &Parsed, chunks: &[ChunkInsert]) {
        for c in chunks {
            let exact: String = parsed
                .text
                .chars()
                .skip(c.char_start as usize)
                .take((c.char_end - c.char_start) as usize)
                .collect();
            assert_eq!(exact, c.text, "offsets are exact");
        }
    }

    #[test]
    fn chunks_start_and_end_on_sentence_edges_and_overlap_by_whole_sentences() {
        let text =
            "Handles are cheap to clone. Each handle refers to the same pool of connections \
                    and may be shared across tasks without locking. Handles may be used in \
                    parallel. When the pool is exhausted, callers wait until a connection is \
                    returned, up to the configured timeout, after which an error is raised. \
                    Closing the pool closes every handle."
                .to_owned();
        let parsed = Parsed {
            format: Format::Text,
            sections: vec![],
            text,
        };
        let chunks = chunker(24, 10).chunk(&parsed);
        check_offsets(&parsed, &chunks);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for (i, c) in chunks.iter().enumerate() {
            assert!(c.token_count <= 24, "{c:?}");
            assert!(c.text.chars().next().unwrap().is_uppercase(), "{c:?}");
            assert!(c.text.ends_with('.'), "{c:?}");
            if i > 0 {
                // An overlap, when there is one, is the previous chunk's last whole sentences.
                let prev = &chunks[i - 1];
                if c.char_start < prev.char_end {
                    let shared: String = parsed
                        .text
                        .chars()
                        .skip(c.char_start as usize)
                        .take((prev.char_end - c.char_start) as usize)
                        .collect();
                    assert!(
                        prev.text.ends_with(&shared) && shared.ends_with('.'),
                        "{shared:?}"
                    );
                }
            }
        }
        assert!(
            chunks
                .iter()
                .any(|c| c.text.starts_with("Handles may be used in parallel.")),
            "{chunks:#?}"
        );
        let all: String = chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for word in parsed.text.split_whitespace() {
            assert!(all.contains(word), "{word} lost");
        }
        // A sentence longer than a chunk is split by words; nothing is lost.
        let long = chunker(8, 2).chunk(&parsed);
        check_offsets(&parsed, &long);
        assert!(long.iter().all(|c| c.token_count <= 8));
        let all: String = long
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for word in parsed.text.split_whitespace() {
            assert!(all.contains(word), "{word} lost");
        }
    }

    #[test]
    fn a_heading_alone_joins_the_next_chunk() {
        let text = "# Guide\n\n## Steps\n\n### One\n\nDo the first thing.".to_owned();
        let at = |s: &str| text.find(s).unwrap();
        let parsed = Parsed {
            format: Format::Markdown,
            sections: vec![
                Section {
                    start: 0,
                    end: at("## Steps"),
                    heading_path: vec!["Guide".into()],
                    page: None,
                },
                Section {
                    start: at("## Steps"),
                    end: at("### One"),
                    heading_path: vec!["Guide".into(), "Steps".into()],
                    page: None,
                },
                Section {
                    start: at("### One"),
                    end: text.len(),
                    heading_path: vec!["Guide".into(), "Steps".into(), "One".into()],
                    page: None,
                },
            ],
            text: text.clone(),
        };
        let chunks = chunker(64, 8).chunk(&parsed);
        check_offsets(&parsed, &chunks);
        assert_eq!(chunks.len(), 1, "{chunks:?}");
        assert_eq!(chunks[0].text, text);
        assert_eq!(chunks[0].heading_path, ["Guide", "Steps", "One"]);
        assert_eq!(chunks[0].chunk_index, 0);
    }
}
