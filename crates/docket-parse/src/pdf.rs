//! PDF: text per page, one section per page.

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
    let mut out = Builder::new(limits);
    for (i, page) in pages.iter().enumerate() {
        out.page(u32::try_from(i + 1).unwrap_or(u32::MAX));
        let page = normalize_newlines(page);
        // Keep line structure, drop layout padding: trim each line, collapse blank runs.
        let mut blank = false;
        let mut first = true;
        for line in page.lines().map(str::trim) {
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
}
