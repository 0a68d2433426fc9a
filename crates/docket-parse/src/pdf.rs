//! PDF: text per page, one section per page.

use crate::builder::Builder;
use crate::text::normalize_newlines;
use crate::{Format, Limits, ParseError, Parsed};

pub(crate) fn parse_pdf(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
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

fn pdf_error(e: &pdf_extract::OutputError) -> ParseError {
    use pdf_extract::OutputError;
    match e {
        OutputError::PdfError(pdf_extract::Error::Decryption(_)) => {
            ParseError::Unsupported("the PDF is encrypted".into())
        }
        other => ParseError::corrupt(Format::Pdf, other),
    }
}
