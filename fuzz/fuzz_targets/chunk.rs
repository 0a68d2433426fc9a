//! The chunker (`docket_pipeline::chunk::Chunker`) with a small chunk size, sized by the
//! hashing embedder's word count. Input: byte 0 picks the format (Markdown or plain) and the
//! chunk size, byte 1 the overlap, byte 2 the number of section cuts; then the cuts (two bytes
//! each, not necessarily on char boundaries, as a buggy parser might produce); the rest is the
//! text (lossily decoded).
//!
//! Invariants: chunks are numbered 0.., no chunk is above the size, none is blank, and each
//! chunk's `char_start..char_end` lies within the text and selects exactly the chunk's text.
#![no_main]

use std::sync::Arc;

use docket_embed::Embedder;
use docket_embed::hashing::{HashingConfig, HashingEmbedder};
use docket_parse::{Format, Parsed, Section};
use docket_pipeline::chunk::Chunker;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (head, rest) = data.split_at(3);
    let format = if head[0] & 1 == 0 {
        Format::Markdown
    } else {
        Format::Text
    };
    let max_tokens = 1 + ((head[0] >> 1) as usize % 16);
    let overlap = head[1] as usize % max_tokens;
    let ncuts = (head[2] % 8) as usize;
    let cut_bytes = (ncuts * 2).min(rest.len());
    let (cuts, body) = rest.split_at(cut_bytes);
    let text = String::from_utf8_lossy(body).into_owned();

    let mut sections = Vec::new();
    if !cuts.is_empty() {
        let mut points: Vec<usize> = cuts
            .chunks(2)
            .map(|c| c.iter().fold(0usize, |a, &b| a * 256 + b as usize) % (text.len() + 1))
            .collect();
        points.push(0);
        points.push(text.len());
        points.sort_unstable();
        points.dedup();
        for (i, w) in points.windows(2).enumerate() {
            sections.push(Section {
                start: w[0],
                end: w[1],
                heading_path: vec![format!("h{i}")],
                page: Some(i as u32 + 1),
            });
        }
    }
    let parsed = Parsed {
        format,
        text,
        sections,
    };

    let embedder: Arc<dyn Embedder> = Arc::new(HashingEmbedder::new(HashingConfig::default()));
    let chunker = Chunker::new(embedder.clone(), max_tokens, overlap).expect("valid settings");
    let chunks = chunker.chunk(&parsed);

    let chars: Vec<char> = parsed.text.chars().collect();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.chunk_index as usize, i, "chunks numbered in order");
        assert!(!c.text.trim().is_empty(), "blank chunk {i}");
        assert!(
            c.token_count as usize <= max_tokens,
            "chunk {i} has {} tokens, above {max_tokens}: {:?}",
            c.token_count,
            c.text
        );
        assert_eq!(c.token_count as usize, embedder.count_tokens(&c.text));
        assert!(
            c.char_start >= 0 && c.char_start <= c.char_end,
            "chunk {i} offsets reversed"
        );
        let (s, e) = (c.char_start as usize, c.char_end as usize);
        assert!(
            e <= chars.len(),
            "chunk {i} ends at char {e}, past the text ({})",
            chars.len()
        );
        let slice: String = chars[s..e].iter().collect();
        assert_eq!(slice, c.text, "chunk {i}'s offsets do not select its text");
    }
});
