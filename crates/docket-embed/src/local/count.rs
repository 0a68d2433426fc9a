//! Counting tokens for the chunker, fast.
//!
//! The chunker sizes many overlapping candidates of each document (`text-splitter` searches for
//! the largest pieces that fit), and running the whole tokenizer over each was most of the
//! chunk stage's time. For a BERT-style tokenizer the count is a sum over whitespace-separated
//! words: its normalizer works character by character (lowercasing, accents, control
//! characters removed, whitespace made a space, CJK characters spaced out) and its
//! pre-tokenizer first splits on `char::is_whitespace` and drops it, so no token spans two
//! words. Each word's count is then remembered, and a candidate costs a split and a few map
//! lookups. Tokenizers where that does not hold (SentencePiece's `▁` prefix, byte-level BPE)
//! are counted whole, as before.

use std::collections::HashMap;
use std::sync::Mutex;

use tokenizers::{NormalizerWrapper, PreTokenizerWrapper, Tokenizer};

/// Words remembered at most; the memory is forgotten when full (about 50 bytes a word).
const MAX_WORDS: usize = 200_000;

/// Counts tokens without special tokens, as `tokenizer.encode(text, false)` does.
pub(super) struct TokenCounter {
    tokenizer: Tokenizer,
    /// Word → tokens, where counts add up over words.
    words: Option<Mutex<HashMap<Box<str>, u32>>>,
}

impl TokenCounter {
    /// `tokenizer` must do no truncation or padding.
    pub(super) fn new(tokenizer: Tokenizer) -> Self {
        let words = adds_up_over_words(&tokenizer).then(|| Mutex::new(HashMap::new()));
        Self { tokenizer, words }
    }

    /// Tokens in `text`.
    pub(super) fn count(&self, text: &str) -> usize {
        let Some(words) = &self.words else {
            return self.whole(text);
        };
        let mut total = 0usize;
        let mut missing: Vec<&str> = Vec::new();
        {
            let Ok(known) = words.lock() else {
                return self.whole(text);
            };
            for word in text.split(char::is_whitespace).filter(|w| !w.is_empty()) {
                match known.get(word) {
                    Some(&n) => total += n as usize,
                    None => missing.push(word),
                }
            }
        }
        if missing.is_empty() {
            return total;
        }
        // Tokenized outside the lock; a word missing twice is counted twice, not stored twice.
        let counted: Vec<(&str, u32)> = missing
            .into_iter()
            .map(|w| (w, self.whole(w) as u32))
            .collect();
        if let Ok(mut known) = words.lock() {
            if known.len() + counted.len() > MAX_WORDS {
                known.clear();
            }
            for &(w, n) in &counted {
                known.insert(w.into(), n);
            }
        }
        total + counted.iter().map(|&(_, n)| n as usize).sum::<usize>()
    }

    fn whole(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false).map_or_else(
            // Tokenizing plain text does not fail in practice; fall back to a rough count.
            |_| text.split_whitespace().count(),
            |e| e.len(),
        )
    }
}

/// Whether a text's token count is the sum of its whitespace-separated words' counts.
fn adds_up_over_words(t: &Tokenizer) -> bool {
    let normalizer = matches!(
        t.get_normalizer(),
        None | Some(NormalizerWrapper::BertNormalizer(_) | NormalizerWrapper::Lowercase(_))
    );
    let pre_tokenizer = matches!(
        t.get_pre_tokenizer(),
        Some(
            PreTokenizerWrapper::BertPreTokenizer(_)
                | PreTokenizerWrapper::Whitespace(_)
                | PreTokenizerWrapper::WhitespaceSplit(_)
        )
    );
    // An added token holding a space would span words.
    let added = t
        .get_added_tokens_decoder()
        .values()
        .all(|a| !a.content.chars().any(char::is_whitespace));
    normalizer && pre_tokenizer && added
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> Option<TokenCounter> {
        let dir = crate::test_model_dir().ok()?;
        let mut t = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        t.with_padding(None);
        t.with_truncation(None).unwrap();
        Some(TokenCounter::new(t))
    }

    #[test]
    fn word_sums_equal_the_whole_tokenizer_on_real_and_awkward_text() {
        let c = counter().expect("the test model (DOCKET_TEST_MODEL_DIR)");
        assert!(
            c.words.is_some(),
            "all-MiniLM-L6-v2's tokenizer adds up over words"
        );
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docket-parse/tests/corpus");
        let mut texts: Vec<String> = std::fs::read_dir(&corpus)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect();
        texts.extend(
            [
                "Ünïcödé accents, CJK 文書の処理 and emoji 🚀🚀 side by side",
                "tabs\tand\r\nCRLF, nbsp\u{a0}here, ideographic\u{3000}space, line\u{2028}sep",
                "zero\u{200b}width, soft\u{ad}hyphen, bom\u{feff}x, control\u{7}bell",
                "[CLS] special [SEP] tokens [MASK] in text, and [UNK]",
                "a-very-long-hyphenated-compound-word-that-goes-on-and-on-and-on-and-on-and-on-past-one-hundred-characters-for-sure",
                "   leading and trailing spaces   ",
                "",
            ]
            .map(str::to_owned),
        );
        assert!(texts.len() > 8, "the parse corpus is there");
        for text in &texts {
            // The whole text, and windows of it as the chunker would ask about (twice, the
            // second time from remembered words).
            let chars: Vec<(usize, char)> = text.char_indices().collect();
            let mut cuts = vec![(0, text.len())];
            for (i, step) in [(0usize, 97usize), (13, 251), (5, 1009)] {
                let mut a = i;
                while a < chars.len() {
                    let b = (a + step).min(chars.len());
                    let end = chars.get(b).map_or(text.len(), |c| c.0);
                    cuts.push((chars[a].0, end));
                    a = b;
                }
            }
            for _ in 0..2 {
                for &(a, b) in &cuts {
                    let piece = &text[a..b];
                    assert_eq!(c.count(piece), c.whole(piece), "{piece:?}");
                }
            }
        }
    }
}
