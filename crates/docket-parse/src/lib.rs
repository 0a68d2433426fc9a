//! Format detection and text extraction for docket's parse stage.
//!
//! [`detect`] decides the format from the bytes (the file name and declared type only break
//! ties), [`parse`] turns bytes into normalised text plus its structure ([`Section`]s with
//! heading paths and page numbers), and [`parse_isolated`] runs the same parse in a child
//! process bounded in time, memory and output size, so hostile input (PDF object loops, zip
//! bombs, parser panics) fails one document with a clear, permanent error.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod builder;
mod detect;
mod docx;
mod html;
mod isolate;
mod markdown;
mod pdf;
mod tabular;
mod text;
mod zipguard;

pub use detect::detect;
pub use isolate::{Isolation, child_main, parse_isolated};

/// A format docket can extract text from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text in any encoding.
    Text,
    /// CommonMark / GitHub-flavoured Markdown.
    Markdown,
    /// HTML.
    Html,
    /// PDF.
    Pdf,
    /// Office Open XML word processing.
    Docx,
    /// Comma-separated values.
    Csv,
    /// Office Open XML spreadsheet.
    Xlsx,
    /// JSON.
    Json,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 8] = [
        Format::Text,
        Format::Markdown,
        Format::Html,
        Format::Pdf,
        Format::Docx,
        Format::Csv,
        Format::Xlsx,
        Format::Json,
    ];

    /// The canonical MIME type.
    pub fn mime(&self) -> &'static str {
        match self {
            Format::Text => "text/plain",
            Format::Markdown => "text/markdown",
            Format::Html => "text/html",
            Format::Pdf => "application/pdf",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Format::Csv => "text/csv",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Json => "application/json",
        }
    }

    /// The short machine name (`"pdf"`, `"markdown"`, ...), as used by serde and [`FromStr`].
    pub fn name(&self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Json => "json",
        }
    }

    /// A label for messages shown to people (`"PDF"`, `"Markdown"`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Format::Text => "text file",
            Format::Markdown => "Markdown",
            Format::Html => "HTML",
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Csv => "CSV",
            Format::Xlsx => "XLSX",
            Format::Json => "JSON",
        }
    }

    /// The format a file extension (without the dot, any case) usually denotes.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "txt" | "text" | "log" => Format::Text,
            "md" | "markdown" | "mdown" | "mkd" => Format::Markdown,
            "html" | "htm" | "xhtml" => Format::Html,
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            "csv" | "tsv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            "json" => Format::Json,
            _ => return None,
        })
    }

    /// The format a MIME type denotes (parameters such as `; charset=` are ignored).
    pub fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Some(match essence.as_str() {
            "text/plain" => Format::Text,
            "text/markdown" | "text/x-markdown" => Format::Markdown,
            "text/html" | "application/xhtml+xml" => Format::Html,
            "application/pdf" => Format::Pdf,
            "text/csv" | "text/tab-separated-values" => Format::Csv,
            "application/json" | "text/json" => Format::Json,
            m if m == Format::Docx.mime() => Format::Docx,
            m if m == Format::Xlsx.mime() => Format::Xlsx,
            _ => return None,
        })
    }

    fn is_text_like(&self) -> bool {
        matches!(
            self,
            Format::Text | Format::Markdown | Format::Html | Format::Csv | Format::Json
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of [`Format::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown document format {0:?}")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Accepts the machine name (`"pdf"`), a common extension (`"md"`, `".htm"`) or a MIME
    /// type (`"text/csv"`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .or_else(|| Format::from_extension(lower.trim_start_matches('.')))
            .or_else(|| Format::from_mime(&lower))
            .ok_or_else(|| UnknownFormat(t.to_owned()))
    }
}

/// A span of the parsed text with the structure it sits in.
///
/// Sections tile the text in order; `start..end` are **byte** offsets into [`Parsed::text`]
/// on `char` boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Headings above this span, outermost first (empty when none).
    pub heading_path: Vec<String>,
    /// 1-based page number, for paged formats.
    pub page: Option<u32>,
}

/// What the parse stage produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    /// The detected format.
    pub format: Format,
    /// Normalised UTF-8 text (NFC not required; `\n` line ends; paragraphs separated by a
    /// blank line).
    pub text: String,
    /// Structure, in text order.
    pub sections: Vec<Section>,
}

impl Parsed {
    /// The text of one section.
    pub fn section_text(&self, section: &Section) -> &str {
        &self.text[section.start..section.end]
    }
}

/// Size bounds applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest accepted input file.
    pub max_input_bytes: u64,
    /// Largest extracted text.
    pub max_text_bytes: u64,
    /// Most bytes read out of a ZIP container (DOCX, XLSX), all entries together.
    pub max_unzipped_bytes: u64,
}

impl Default for Limits {
    /// 64 MiB input, 32 MiB text, 256 MiB unzipped.
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 << 20,
            max_text_bytes: 32 << 20,
            max_unzipped_bytes: 256 << 20,
        }
    }
}

/// Which bound a [`ParseError::TooLarge`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeLimit {
    /// [`Limits::max_input_bytes`].
    Input,
    /// [`Limits::max_text_bytes`].
    Text,
    /// [`Limits::max_unzipped_bytes`], for a container of the given format.
    Unzipped(Format),
}

/// Why a document could not be parsed.
///
/// Every variant but [`ParseError::Unavailable`] is permanent: parsing the same bytes again
/// fails the same way. The `Display` text is meant for the person who uploaded the document.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ParseError {
    /// The file is not in a supported format.
    #[error("unsupported file: {0}")]
    Unsupported(String),
    /// The file has no bytes.
    #[error("file is empty")]
    Empty,
    /// The file parsed but holds no text.
    #[error("no text could be extracted from this {}", .format.label())]
    NoText {
        /// The format it was parsed as.
        format: Format,
    },
    /// The file is damaged or not what it claims to be.
    #[error("{} is corrupt: {reason}", .format.label())]
    Corrupt {
        /// The format it was parsed as.
        format: Format,
        /// What is wrong, for people.
        reason: String,
    },
    /// A size bound was exceeded.
    #[error("{}", too_large_message(.limit, *.max_bytes))]
    TooLarge {
        /// Which bound.
        limit: SizeLimit,
        /// The bound, in bytes.
        max_bytes: u64,
    },
    /// The isolated parser ran out of time.
    #[error("parser timed out after {secs} s")]
    Timeout {
        /// The time limit, in seconds.
        secs: f64,
    },
    /// The isolated parser ran out of memory.
    #[error("parser ran out of memory (limit {})", human_bytes(*.bytes))]
    MemoryLimit {
        /// The memory limit, in bytes.
        bytes: u64,
    },
    /// The parser crashed.
    #[error("parser crashed: {0}")]
    Crashed(String),
    /// The isolated parser could not be started (a deployment problem, not the document's):
    /// the only variant that is not permanent, see [`ParseError::is_permanent`].
    #[error("parser unavailable: {0}")]
    Unavailable(String),
}

fn too_large_message(limit: &SizeLimit, max: u64) -> String {
    let max = human_bytes(max);
    match limit {
        SizeLimit::Input => format!("file is larger than the {max} limit"),
        SizeLimit::Text => format!("extracted text is larger than the {max} limit"),
        SizeLimit::Unzipped(f) => {
            format!("{} expands past the {max} limit (zip bomb?)", f.label())
        }
    }
}

/// `268435456` → `"256 MiB"`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut whole = n;
    while whole >= 1024 && whole.is_multiple_of(1024) && unit + 1 < UNITS.len() {
        whole /= 1024;
        unit += 1;
    }
    if unit > 0 || n < 1024 {
        return format!("{whole} {}", UNITS[unit]);
    }
    let mut v = n as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

impl ParseError {
    /// Whether parsing the same bytes again would fail the same way. Only
    /// [`ParseError::Unavailable`] is not permanent.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ParseError::Unavailable(_))
    }

    pub(crate) fn corrupt(format: Format, reason: impl fmt::Display) -> Self {
        ParseError::Corrupt {
            format,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn text_too_large(limits: &Limits) -> Self {
        ParseError::TooLarge {
            limit: SizeLimit::Text,
            max_bytes: limits.max_text_bytes,
        }
    }
}

/// Extracts text and structure from `bytes` in this process.
///
/// Panics inside the third-party parsers are caught and reported as
/// [`ParseError::Corrupt`]; endless loops and runaway memory are not bounded here — use
/// [`parse_isolated`] for untrusted input.
pub fn parse(bytes: &[u8], format: Format, limits: &Limits) -> Result<Parsed, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    if bytes.len() as u64 > limits.max_input_bytes {
        return Err(ParseError::TooLarge {
            limit: SizeLimit::Input,
            max_bytes: limits.max_input_bytes,
        });
    }
    let result = catch_unwind(AssertUnwindSafe(|| match format {
        Format::Text => text::parse_text(bytes, limits),
        Format::Markdown => markdown::parse_markdown(bytes, limits),
        Format::Html => html::parse_html(bytes, limits),
        Format::Pdf => pdf::parse_pdf(bytes, limits),
        Format::Docx => docx::parse_docx(bytes, limits),
        Format::Csv => tabular::parse_csv(bytes, limits),
        Format::Xlsx => tabular::parse_xlsx(bytes, limits),
        Format::Json => tabular::parse_json(bytes, limits),
    }));
    let parsed = match result {
        Ok(r) => r?,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            return Err(ParseError::corrupt(
                format,
                format!("the parser failed on it ({msg})"),
            ));
        }
    };
    if parsed.text.len() as u64 > limits.max_text_bytes {
        return Err(ParseError::text_too_large(limits));
    }
    if parsed.text.trim().is_empty() {
        return Err(ParseError::NoText { format });
    }
    Ok(parsed)
}
