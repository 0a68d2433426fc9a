//! Shared helpers for the corpus tests (included with `mod common;`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use docket_parse::{Isolation, Parsed};

pub fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn isolation() -> Isolation {
    Isolation {
        program: PathBuf::from(env!("CARGO_BIN_EXE_docket-parse-child")),
        args: Vec::new(),
        timeout: Duration::from_secs(30),
        memory_bytes: 1 << 30,
    }
}

/// Sections tile the text on char boundaries.
pub fn assert_tiles(p: &Parsed) {
    assert!(!p.sections.is_empty(), "no sections");
    assert_eq!(p.sections[0].start, 0);
    assert_eq!(p.sections.last().unwrap().end, p.text.len());
    for w in p.sections.windows(2) {
        assert_eq!(w[0].end, w[1].start, "gap or overlap between sections");
    }
    for s in &p.sections {
        assert!(s.start < s.end);
        assert!(p.text.is_char_boundary(s.start) && p.text.is_char_boundary(s.end));
    }
}

/// The section holding `needle`.
pub fn section_of<'a>(p: &'a Parsed, needle: &str) -> &'a docket_parse::Section {
    let at = p
        .text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text:\n{}", p.text));
    p.sections
        .iter()
        .find(|s| s.start <= at && at < s.end)
        .expect("text offset outside every section")
}
