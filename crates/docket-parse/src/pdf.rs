//! PDF: text per page, one section per page; running headers, footers and page numbers
//! removed, words hyphenated across lines joined.

use crate::builder::Builder;
use crate::text::normalize_newlines;
use crate::{Format, Limits, ParseError, Parsed};

pub(crate) fn parse_pdf(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // pdf-extract follows `/Parent` links to find inherited page attributes without checking
    // for a cycle, so a page tree whose `/Parent` chain loops makes it spin forever.
    if let Ok(doc) = pdf_extract::Document::load_mem(bytes)
        && has_parent_loop(&doc)
    {
        return Err(ParseError::corrupt(Format::Pdf, "its page tree loops"));
    }
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| pdf_error(&e))?;
    if pages.is_empty() {
        return Err(ParseError::corrupt(Format::Pdf, "it has no readable pages"));
    }
    let pages: Vec<String> = pages
        .iter()
        .map(|p| normalize_newlines(p).into_owned())
        .collect();
    let lines: Vec<Vec<&str>> = pages.iter().map(|p| page_lines(p)).collect();
    let mut out = Builder::new(limits);
    for (i, page) in strip_running_lines(&lines).iter().enumerate() {
        out.page(u32::try_from(i + 1).unwrap_or(u32::MAX));
        // Keep line structure, drop layout padding: one paragraph break per blank run.
        let mut blank = false;
        let mut first = true;
        for line in page {
            if line.is_empty() {
                blank = true;
                continue;
            }
            if !first {
                if blank {
                    out.para();
                } else {
                    out.line();
                }
            }
            out.text(line)?;
            blank = false;
            first = false;
        }
    }
    out.finish(Format::Pdf)
}

/// A page's lines without layout padding (each trimmed; blank runs kept as one empty line).
fn page_lines(page: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in page.lines().map(str::trim) {
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// How many lines at each end of a page may be a running header or footer.
const EDGE_LINES: usize = 2;

/// A line as a running header or footer is compared: digits (page numbers, dates) count as
/// one, case and spacing do not count.
fn edge_key(line: &str) -> String {
    let mut key = String::with_capacity(line.len());
    let mut digits = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !digits {
                key.push('#');
            }
            digits = true;
        } else {
            digits = false;
            if !c.is_whitespace() {
                key.extend(c.to_lowercase());
            }
        }
    }
    key
}

/// A page number alone: digits, or roman numerals, maybe with "page", "-" or "of n".
fn is_page_number(line: &str) -> bool {
    let key = edge_key(line);
    let key = key.trim_start_matches("page").replace("of#", "");
    let key = key.trim_matches(|c| c == '-' || c == '–' || c == '.' || c == '|');
    key == "#" || (!key.is_empty() && key.len() <= 6 && key.chars().all(|c| "ivxlc".contains(c)))
}

/// The pages' lines without what repeats at their edges: a line among the first or last
/// [`EDGE_LINES`] of a page is a running header or footer when its [`edge_key`] appears at the
/// edges of at least half the pages (and at least 3), or when it is a page number alone.
/// Lines in the body of a page are never removed.
fn strip_running_lines(pages: &[Vec<&str>]) -> Vec<Vec<String>> {
    use std::collections::HashMap;
    let edges = |lines: &Vec<&str>| -> Vec<usize> {
        let filled: Vec<usize> = (0..lines.len()).filter(|&i| !lines[i].is_empty()).collect();
        let mut at: Vec<usize> = filled.iter().copied().take(EDGE_LINES).collect();
        at.extend(filled.iter().rev().copied().take(EDGE_LINES));
        at.sort_unstable();
        at.dedup();
        at
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for lines in pages {
        let mut keys: Vec<String> = edges(lines).iter().map(|&i| edge_key(lines[i])).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
    }
    let threshold = (pages.len() / 2).max(3);
    pages
        .iter()
        .map(|lines| {
            let drop: Vec<usize> = edges(lines)
                .into_iter()
                .filter(|&i| {
                    is_page_number(lines[i])
                        || seen
                            .get(&edge_key(lines[i]))
                            .is_some_and(|n| *n >= threshold)
                })
                .collect();
            let kept: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, l)| *l)
                .collect();
            join_hyphenated(&kept)
        })
        .collect()
}

/// Joins a word broken across lines by a hyphen ("man-" / "agement" → "management" on the
/// first line): a line ending in a letter and `-`, followed by a line starting with a
/// lowercase letter. Other lines stay as they were.
fn join_hyphenated(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut carry = String::new();
    for (i, line) in lines.iter().enumerate() {
        let mut line = format!("{carry}{line}");
        carry.clear();
        let next_lower = lines
            .get(i + 1)
            .and_then(|l| l.chars().next())
            .is_some_and(char::is_lowercase);
        let broken = line.len() > 1
            && line.ends_with('-')
            && line[..line.len() - 1]
                .chars()
                .next_back()
                .is_some_and(char::is_alphabetic);
        if broken && next_lower {
            // Move the word's first half down to the next line.
            line.pop();
            let start = line
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
                .map_or(0, |(i, c)| i + c.len_utf8());
            carry = line[start..].to_owned();
            line.truncate(start);
            let trimmed = line.trim_end().len();
            line.truncate(trimmed);
            if line.is_empty() {
                continue; // the line was that half word alone
            }
        }
        out.push(line);
    }
    out
}

/// Whether following `/Parent` from any object ever comes back to an object already passed.
fn has_parent_loop(doc: &pdf_extract::Document) -> bool {
    use std::collections::HashSet;
    let mut acyclic: HashSet<pdf_extract::ObjectId> = HashSet::new();
    for &start in doc.objects.keys() {
        let mut path = HashSet::new();
        let mut id = start;
        loop {
            if acyclic.contains(&id) {
                break;
            }
            if !path.insert(id) {
                return true;
            }
            let parent = doc
                .get_dictionary(id)
                .and_then(|d| d.get(b"Parent"))
                .and_then(|p| p.as_reference());
            match parent {
                Ok(next) => id = next,
                Err(_) => break,
            }
        }
        acyclic.extend(path);
    }
    false
}

fn pdf_error(e: &pdf_extract::OutputError) -> ParseError {
    use pdf_extract::OutputError;
    match e {
        OutputError::PdfError(pdf_extract::Error::Decryption(_)) => {
            ParseError::Unsupported("the PDF is encrypted".into())
        }
        other => ParseError::corrupt(Format::Pdf, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `parse_pdf` fuzz target: page 3's `/Parent` is 2, whose `/Parent` is
    /// itself; pdf-extract looped forever looking up inherited attributes.
    #[test]
    fn parent_loop_is_corrupt_not_endless() {
        let pdf: &[u8] = b"%PDF-1.4\n\
1 0 obj\n\
<< /Type /Catalog /Pages 2 0 R >>\n\
endobj\n\
2 0 obj\n\
<< /Type /Pages /Kids [1 0 R 3 0 R] /Count 2 /Parent 2 0 R >>\n\
endobj\n\
3 0 obj\n\
<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>\n\
endobj\n\
4 0 obj\n\
<< /Length 4 0 R >>\n\
s\x88ream\n\
BT /F1 12 Tf 72 720 Td (Loop) Tj ET\n\
endstream\n\
endobj\n\
xref\n\
0 5\n\
0000000000 65535 f \n\
0000000009 00000 n \n\
0000000058 00000 n \n\
0000000135 00000 n \n\
0000000222 00000 n \n\
trailer\n\
<< /Size 5 /Root 1 0 R >>\n\
startxref\n\
310\n\
%%EOF\n\
";
        let err = parse_pdf(pdf, &Limits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Corrupt {
                    format: Format::Pdf,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// A PDF whose pages hold these lines (Helvetica, top to bottom), with a valid xref.
    fn pdf(pages: &[Vec<String>]) -> Vec<u8> {
        let mut objects: Vec<String> = Vec::new();
        let n = pages.len();
        // 1: catalog, 2: pages, 3: font, then a page and its content per page.
        objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
        let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
        objects.push(format!(
            "<< /Type /Pages /Kids [{}] /Count {n} >>",
            kids.join(" ")
        ));
        objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
        for (i, lines) in pages.iter().enumerate() {
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            ));
            let mut stream = String::new();
            for (j, line) in lines.iter().enumerate() {
                let text = line
                    .replace('\\', "\\\\")
                    .replace('(', "\\(")
                    .replace(')', "\\)");
                stream.push_str(&format!(
                    "BT /F1 11 Tf 72 {} Td ({text}) Tj ET\n",
                    740 - 16 * j as i32
                ));
            }
            objects.push(format!(
                "<< /Length {} >>\nstream\n{stream}endstream",
                stream.len()
            ));
        }
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// Running headers and footers (the same on every page but their numbers) and page numbers
    /// go; a word hyphenated across lines is joined; the body, and each page's number as its
    /// section, stay.
    #[test]
    fn running_headers_footers_and_hyphenation_are_cleaned() {
        let words = ["alpha", "beta", "gamma", "delta"];
        let pages: Vec<Vec<String>> = (1..=4)
            .map(|p| {
                let word = words[p - 1];
                vec![
                    format!("Chapter 2: ASN.1 structure handling {p}"),
                    format!("Body text of the {word} page about quality man-"),
                    "agement and its well-known rules.".to_owned(),
                    format!("A line that mentions Chapter 2 in the body, page {p}."),
                    format!("The {word} page ends here."),
                    format!("{p}"),
                ]
            })
            .collect();
        let parsed = parse_pdf(&pdf(&pages), &Limits::default()).unwrap();
        let text = &parsed.text;
        assert!(!text.contains("structure handling"), "{text}");
        assert!(text.contains("management and its"), "{text}");
        assert!(!text.contains("man-"), "{text}");
        assert!(text.contains("well-known"), "{text}");
        for p in 1..=4 {
            assert!(
                text.contains(&format!("The {} page ends here.", words[p - 1])),
                "{text}"
            );
            assert!(
                text.contains(&format!("mentions Chapter 2 in the body, page {p}.")),
                "{text}"
            );
        }
        assert!(
            !text
                .lines()
                .any(|l| l.trim().chars().all(|c| c.is_ascii_digit()) && !l.trim().is_empty()),
            "page numbers alone are gone: {text}"
        );
        let pages_seen: Vec<Option<u32>> = parsed.sections.iter().map(|s| s.page).collect();
        assert_eq!(pages_seen, vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn edges_that_do_not_repeat_stay() {
        let lines = |v: &[&'static str]| v.to_vec();
        let pages = vec![
            lines(&["Introduction", "", "First page body.", "Closing words"]),
            lines(&["Methods", "", "Second page body.", "Another ending"]),
        ];
        let cleaned = strip_running_lines(&pages);
        assert_eq!(
            cleaned[0],
            vec!["Introduction", "", "First page body.", "Closing words"]
        );
        assert_eq!(
            join_hyphenated(&["A co-", "Operative", "x-", "ray", "end-"]),
            vec!["A co-", "Operative", "xray", "end-"],
            "a capital after the hyphen keeps it"
        );
    }
}
