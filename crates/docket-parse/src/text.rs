//! Character decoding and plain text.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

use crate::{Format, Limits, ParseError, Parsed, Section};

/// Decodes bytes of unknown encoding: a BOM wins, then valid UTF-8, then BOM-less UTF-16
/// (recognised by its zero bytes), then whatever chardetng guesses for legacy encodings.
pub(crate) fn decode(bytes: &[u8]) -> (Cow<'_, str>, &'static Encoding) {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return (text, enc);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(s), UTF_8);
    }
    if let Some(enc) = sniff_utf16(bytes) {
        let (text, _) = enc.decode_without_bom_handling(bytes);
        return (text, enc);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    let enc = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _) = enc.decode_without_bom_handling(bytes);
    (text, enc)
}

/// BOM-less UTF-16: most code units of Latin-script text have one zero byte, always on the
/// same side.
fn sniff_utf16(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 4 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_zero = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    if odd_zero * 10 >= pairs * 7 && even_zero * 10 <= pairs {
        Some(UTF_16LE)
    } else if even_zero * 10 >= pairs * 7 && odd_zero * 10 <= pairs {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// True when decoded text is really binary data: NUL characters, or more than 5% control
/// characters other than whitespace, or more than 5% undecodable sequences.
pub(crate) fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in text.chars().take(65_536) {
        total += 1;
        if c == '\0' {
            return true;
        }
        if (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
            || c == char::REPLACEMENT_CHARACTER
        {
            bad += 1;
        }
    }
    total > 0 && bad * 20 > total
}

/// Converts `\r\n` and lone `\r` to `\n`.
pub(crate) fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Decodes and normalises text for a text-like format, refusing binary data.
pub(crate) fn decode_text(bytes: &[u8], format: Format) -> Result<String, ParseError> {
    let (text, _) = decode(bytes);
    if looks_binary(&text) {
        return Err(binary_error(format));
    }
    Ok(normalize_newlines(&text).into_owned())
}

pub(crate) fn binary_error(format: Format) -> ParseError {
    ParseError::Unsupported(format!(
        "the file contains binary data, not {}",
        match format {
            Format::Text => "text".to_string(),
            f => f.label().to_string(),
        }
    ))
}

pub(crate) fn parse_text(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let text = decode_text(bytes, Format::Text)?;
    // Keep the text as written, minus trailing whitespace at its end.
    let text = text.trim_end().to_owned();
    if text.len() as u64 > limits.max_text_bytes {
        return Err(ParseError::text_too_large(limits));
    }
    let sections = if text.is_empty() {
        Vec::new()
    } else {
        vec![Section {
            start: 0,
            end: text.len(),
            heading_path: Vec::new(),
            page: None,
        }]
    };
    Ok(Parsed {
        format: Format::Text,
        text,
        sections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bomless_utf16_is_recognised() {
        let bytes: Vec<u8> = "hello wörld"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode(&bytes).0, "hello wörld");
        let bytes: Vec<u8> = "hello wörld"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode(&bytes).0, "hello wörld");
    }

    #[test]
    fn newlines_are_normalised() {
        assert_eq!(normalize_newlines("a\r\nb\rc\n"), "a\nb\nc\n");
    }

    #[test]
    fn control_characters_mean_binary() {
        assert!(looks_binary("abc\0def"));
        assert!(looks_binary("\x01\x02\x03abcdefgh"));
        assert!(!looks_binary("tab\tand\nnewline"));
    }
}
