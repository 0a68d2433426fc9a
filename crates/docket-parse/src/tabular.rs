//! CSV, XLSX and JSON: records flattened to `key: value` lines.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use serde_json::Value;

use crate::builder::{Builder, collapse_whitespace};
use crate::text::decode_text;
use crate::zipguard::Container;
use crate::{Format, Limits, ParseError, Parsed};

/// Writes a table: when the first row looks like a header (two or more non-empty names),
/// every later row becomes `header: value; header: value`; otherwise cells are joined with
/// `" | "`.
fn write_rows<I>(out: &mut Builder, mut rows: I, force_header: bool) -> Result<(), ParseError>
where
    I: Iterator<Item = Result<Vec<String>, ParseError>>,
{
    let Some(first) = rows.next().transpose()? else {
        return Ok(());
    };
    let is_header = force_header || (first.len() >= 2 && first.iter().all(|h| !h.is_empty()));
    let header: Vec<String> = first
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if h.is_empty() {
                format!("column {}", i + 1)
            } else {
                h.clone()
            }
        })
        .collect();
    let mut any_record = false;
    if !is_header {
        out.line();
        out.text(&first.join(" | "))?;
        any_record = true;
    }
    for row in rows {
        let row = row?;
        if row.iter().all(String::is_empty) {
            continue;
        }
        let line = if is_header {
            row.iter()
                .enumerate()
                .filter(|(_, v)| !v.is_empty())
                .map(|(i, v)| match header.get(i) {
                    Some(h) => format!("{h}: {v}"),
                    None => format!("column {}: {v}", i + 1),
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            row.join(" | ")
        };
        out.line();
        out.text(&line)?;
        any_record = true;
    }
    if !any_record {
        // A header without records still carries the column names.
        out.line();
        out.text(&header.join(" | "))?;
    }
    Ok(())
}

pub(crate) fn parse_csv(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let text = decode_text(bytes, Format::Csv)?;
    let delimiter = sniff_delimiter(&text);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let rows = reader.records().map(|r| {
        r.map(|rec| rec.iter().map(collapse_whitespace).collect())
            .map_err(|e| ParseError::corrupt(Format::Csv, e))
    });
    let mut out = Builder::new(limits);
    write_rows(&mut out, rows, true)?;
    out.finish(Format::Csv)
}

/// The delimiter among `,`, tab and `;` that splits the first line into the most fields.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().next().unwrap_or("");
    [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|d| first.bytes().filter(|b| b == d).count())
        .filter(|d| first.as_bytes().contains(d))
        .unwrap_or(b',')
}

pub(crate) fn parse_xlsx(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // calamine trusts the container's headers: prove the real sizes first.
    Container::open(bytes, Format::Xlsx, limits)?.verify_all()?;
    let mut book =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| ParseError::corrupt(Format::Xlsx, e))?;
    let mut out = Builder::new(limits);
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| ParseError::corrupt(Format::Xlsx, format!("sheet {name:?}: {e}")))?;
        if range.is_empty() {
            continue;
        }
        out.heading(1, &name)?;
        let rows = range.rows().map(|row| {
            Ok(row
                .iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    other => collapse_whitespace(&other.to_string()),
                })
                .collect())
        });
        write_rows(&mut out, rows, false)?;
    }
    out.finish(Format::Xlsx)
}

pub(crate) fn parse_json(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let text = match std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)) {
        Ok(s) => s.to_owned(),
        // JSON is UTF-8 by definition, but accept UTF-16 with a BOM.
        Err(e) if encoding_rs::Encoding::for_bom(bytes).is_none() => {
            return Err(ParseError::corrupt(
                Format::Json,
                format!("it is not valid UTF-8 ({e})"),
            ));
        }
        Err(_) => decode_text(bytes, Format::Json)?,
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| ParseError::corrupt(Format::Json, e))?;
    let mut out = Builder::new(limits);
    // Iterative walk: (path, value), children pushed in reverse to keep document order.
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), &value)];
    while let Some((path, v)) = stack.pop() {
        let scalar = match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map.iter().rev() {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    stack.push((p, child));
                }
                continue;
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, child) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{i}]"), child));
                }
                continue;
            }
            Value::Object(_) => "{}".to_string(),
            Value::Array(_) => "[]".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.line();
        if path.is_empty() {
            out.text(&scalar)?;
        } else {
            out.text(&format!("{path}: {scalar}"))?;
        }
    }
    out.finish(Format::Json)
}
