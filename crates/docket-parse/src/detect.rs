//! Format detection: the bytes decide; the file name and declared MIME type only break ties
//! among text-like formats.

use std::io::Cursor;

use crate::text::{decode, looks_binary};
use crate::{Format, ParseError};

/// Magic numbers of formats docket does not read, for a helpful refusal.
const FOREIGN_MAGIC: &[(&[u8], &str)] = &[
    (
        b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
        "legacy Microsoft Office files (.doc, .xls, .ppt) are not supported; save it as DOCX or XLSX",
    ),
    (b"\x89PNG\r\n\x1a\n", "PNG images are not supported"),
    (b"\xFF\xD8\xFF", "JPEG images are not supported"),
    (b"GIF87a", "GIF images are not supported"),
    (b"GIF89a", "GIF images are not supported"),
    (b"\x1F\x8B", "gzip archives are not supported"),
    (b"7z\xBC\xAF\x27\x1C", "7-Zip archives are not supported"),
    (b"Rar!\x1A\x07", "RAR archives are not supported"),
    (b"\x7FELF", "executables are not supported"),
    (b"{\\rtf", "RTF documents are not supported"),
];

/// Decides the format of a document.
///
/// Binary formats are recognised by their content only (`%PDF`, a ZIP holding
/// `word/document.xml` or `xl/workbook.xml`). Text is decoded in whatever encoding it uses and
/// recognised as JSON (when it parses), HTML (by its leading markup), or CSV (consistent
/// columns); otherwise the extension of `filename` and then `declared_mime` choose among the
/// text-like formats, and a Markdown heuristic or plain text is the fallback. Binary data that
/// is none of these is refused whatever its name.
pub fn detect(
    bytes: &[u8],
    filename: Option<&str>,
    declared_mime: Option<&str>,
) -> Result<Format, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let hint = filename
        .and_then(|n| n.rsplit_once('.'))
        .and_then(|(_, ext)| Format::from_extension(ext))
        .or_else(|| declared_mime.and_then(Format::from_mime));

    let head = &bytes[..bytes.len().min(1024)];
    if memmem(head, b"%PDF-").is_some() {
        return Ok(Format::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return detect_zip(bytes, hint);
    }
    for (magic, why) in FOREIGN_MAGIC {
        if bytes.starts_with(magic) {
            return Err(ParseError::Unsupported((*why).to_string()));
        }
    }

    let (text, _) = decode(bytes);
    if looks_binary(&text) {
        return Err(ParseError::Unsupported(
            "the file contains binary data, not text or a known document format".into(),
        ));
    }
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
    {
        return Ok(Format::Json);
    }
    if sniff_html(trimmed) {
        return Ok(Format::Html);
    }
    if looks_like_csv(&text) {
        return Ok(Format::Csv);
    }
    if let Some(h) = hint.filter(Format::is_text_like) {
        return Ok(h);
    }
    if looks_like_markdown(&text) {
        return Ok(Format::Markdown);
    }
    Ok(Format::Text)
}

fn memmem(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn detect_zip(bytes: &[u8], hint: Option<Format>) -> Result<Format, ParseError> {
    let archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(e) => {
            return Err(match hint {
                Some(f @ (Format::Docx | Format::Xlsx)) => {
                    ParseError::corrupt(f, format!("the ZIP container cannot be read ({e})"))
                }
                _ => ParseError::Unsupported(format!("unreadable ZIP archive ({e})")),
            });
        }
    };
    let mut docx = false;
    let mut xlsx = false;
    for name in archive.file_names().flatten() {
        docx |= name == "word/document.xml";
        xlsx |= name == "xl/workbook.xml";
    }
    match (docx, xlsx) {
        (true, _) => Ok(Format::Docx),
        (false, true) => Ok(Format::Xlsx),
        _ => Err(ParseError::Unsupported(
            "ZIP archive that is neither a DOCX nor an XLSX document".into(),
        )),
    }
}

/// WHATWG-style sniffing: the first markup must be a doctype, comment or a typical HTML tag.
fn sniff_html(trimmed: &str) -> bool {
    let mut s = trimmed;
    if let Some(rest) = s.strip_prefix("<?xml") {
        // XHTML: look past the XML declaration.
        s = rest.split_once("?>").map_or("", |(_, r)| r.trim_start());
    }
    let lower: String = s.chars().take(16).collect::<String>().to_ascii_lowercase();
    if lower.starts_with("<!doctype html") {
        return true;
    }
    const TAGS: &[&str] = &[
        "html", "head", "body", "script", "iframe", "h1", "h2", "h3", "div", "font", "table", "a",
        "style", "title", "b", "br", "p", "meta", "!--",
    ];
    let Some(rest) = lower.strip_prefix('<') else {
        return false;
    };
    TAGS.iter().any(|t| {
        rest.strip_prefix(t)
            .is_some_and(|after| after.starts_with([' ', '>', '\t', '\n', '/']))
    }) && (!rest.starts_with("!--") || s.to_ascii_lowercase().contains("<html"))
}

/// Consistent columns: at least two rows with the same number (two or more) of comma-, tab-
/// or semicolon-separated fields, and header fields short enough to be column names.
fn looks_like_csv(text: &str) -> bool {
    let sample = &text[..floor_char_boundary(text, 64 * 1024)];
    let truncated = sample.len() < text.len();
    [b',', b'\t', b';'].into_iter().any(|delim| {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(false)
            .flexible(true)
            .from_reader(sample.as_bytes());
        let mut rows = 0usize;
        let mut width = 0usize;
        for (i, rec) in reader.records().take(50).enumerate() {
            let Ok(rec) = rec else { return false };
            if i == 0 {
                width = rec.len();
                if width < 2 || rec.iter().any(|f| f.trim().is_empty() || f.len() > 64) {
                    return false;
                }
            } else if rec.len() != width {
                // The last record of a truncated sample may be cut short.
                if !(truncated && rec.len() < width) {
                    return false;
                }
            }
            rows += 1;
        }
        rows >= 2
    })
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Two or more typical Markdown constructs.
fn looks_like_markdown(text: &str) -> bool {
    let mut score = 0;
    for line in text.lines().take(500) {
        let l = line.trim_start();
        if l.starts_with("# ")
            || l.starts_with("## ")
            || l.starts_with("### ")
            || l.starts_with("```")
            || l.starts_with("- [")
            || l.starts_with("> ")
            || (l.starts_with('|') && l.ends_with('|') && l.len() > 2)
        {
            score += 2;
        } else if l.starts_with("- ") || l.starts_with("* ") || l.contains("](") {
            score += 1;
        }
        if score >= 3 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_like_ties_use_the_name() {
        let prose = b"Just a sentence.\nAnother one here.\n";
        assert_eq!(detect(prose, Some("a.md"), None).unwrap(), Format::Markdown);
        assert_eq!(detect(prose, Some("a.txt"), None).unwrap(), Format::Text);
        assert_eq!(
            detect(prose, None, Some("text/markdown")).unwrap(),
            Format::Markdown
        );
        assert_eq!(detect(prose, Some("a.pdf"), None).unwrap(), Format::Text);
        assert_eq!(detect(prose, None, None).unwrap(), Format::Text);
    }

    #[test]
    fn content_beats_the_name() {
        assert_eq!(
            detect(b"{\"a\": 1}", Some("x.txt"), None).unwrap(),
            Format::Json
        );
        assert_eq!(
            detect(b"<html><body>hi</body></html>", Some("x.md"), None).unwrap(),
            Format::Html
        );
        assert_eq!(
            detect(b"a,b\n1,2\n3,4\n", Some("x.txt"), None).unwrap(),
            Format::Csv
        );
        assert_eq!(
            detect(b"%PDF-1.4 junk", Some("x.txt"), None).unwrap(),
            Format::Pdf
        );
    }

    #[test]
    fn prose_with_commas_is_not_csv() {
        let text = b"Hello, this is a long sentence that has a comma in the middle of it, twice.\nAnd this, too.\n";
        assert_ne!(detect(text, None, None).unwrap(), Format::Csv);
    }

    #[test]
    fn foreign_formats_are_refused() {
        let err = detect(b"\x89PNG\r\n\x1a\n....", Some("x.txt"), None).unwrap_err();
        assert!(err.to_string().contains("PNG"), "{err}");
    }
}
