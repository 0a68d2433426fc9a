//! DOCX: `word/document.xml` read with quick-xml; headings from paragraph styles, tables as
//! one line per row.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::builder::Builder;
use crate::zipguard::Container;
use crate::{Format, Limits, ParseError, Parsed};

pub(crate) fn parse_docx(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let mut zip = Container::open(bytes, Format::Docx, limits)?;
    let document = zip
        .read("word/document.xml")?
        .ok_or_else(|| ParseError::corrupt(Format::Docx, "word/document.xml is missing"))?;
    let styles = match zip.read("word/styles.xml")? {
        Some(xml) => heading_styles(&xml)?,
        None => HashMap::new(),
    };
    let xml = std::str::from_utf8(&document).map_err(|e| {
        ParseError::corrupt(
            Format::Docx,
            format!("word/document.xml is not UTF-8 ({e})"),
        )
    })?;
    Walker {
        out: Builder::new(limits),
        styles,
        paras: Vec::new(),
        tables: Vec::new(),
        in_text: 0,
        in_run: 0,
        skip: 0,
    }
    .run(xml)
}

#[derive(Default)]
struct Para {
    text: String,
    level: Option<u8>,
}

#[derive(Default)]
struct Table {
    row: Vec<String>,
    cell: Option<Vec<String>>,
}

struct Walker {
    out: Builder,
    /// Style id → heading level (0 = title).
    styles: HashMap<String, u8>,
    paras: Vec<Para>,
    tables: Vec<Table>,
    in_text: usize,
    in_run: usize,
    /// Depth inside subtrees whose text is a duplicate (`mc:Fallback`).
    skip: usize,
}

fn xml_error(part: &str, e: impl std::fmt::Display) -> ParseError {
    ParseError::corrupt(Format::Docx, format!("{part} is not valid XML ({e})"))
}

fn attr(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return None,
    })
}

impl Walker {
    fn run(mut self, xml: &str) -> Result<Parsed, ParseError> {
        let mut reader = Reader::from_str(xml);
        loop {
            let event = reader
                .read_event()
                .map_err(|e| xml_error("word/document.xml", e))?;
            let collecting = self.in_text > 0 && self.skip == 0;
            match event {
                Event::Start(e) => self.start(&e, false)?,
                Event::Empty(e) => self.start(&e, true)?,
                Event::End(e) => self.end(e.local_name().as_ref())?,
                Event::Text(t) if collecting => self.push(&t.xml10_content()),
                Event::CData(t) if collecting => self.push(&t.xml10_content()),
                Event::GeneralRef(r) if collecting => {
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => entity(&r.xml10_content()),
                    };
                    if let Some(c) = c {
                        self.push(c.encode_utf8(&mut [0; 4]));
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        self.out.finish(Format::Docx)
    }

    fn push(&mut self, s: &str) {
        if let Some(p) = self.paras.last_mut() {
            p.text.push_str(s);
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), ParseError> {
        let name = e.local_name();
        let name = name.as_ref();
        if self.skip > 0 {
            if !empty {
                self.skip += 1;
            }
            return Ok(());
        }
        match name {
            "Fallback" if !empty => self.skip = 1,
            "p" if !empty => self.paras.push(Para::default()),
            "pStyle" => {
                if let (Some(id), Some(p)) = (attr(e, "val"), self.paras.last_mut()) {
                    p.level = p
                        .level
                        .or_else(|| self.styles.get(&id).copied())
                        .or_else(|| style_id_level(&id));
                }
            }
            "outlineLvl" => {
                let level = attr(e, "val").and_then(|v| v.parse::<u8>().ok());
                if let (Some(l @ 0..=8), Some(p)) = (level, self.paras.last_mut()) {
                    p.level = Some(l + 1);
                }
            }
            "r" if !empty => self.in_run += 1,
            "t" if !empty => self.in_text += 1,
            "tab" | "ptab" if self.in_run > 0 => self.push("\t"),
            "br" | "cr" if self.in_run > 0 => self.push("\n"),
            "noBreakHyphen" if self.in_run > 0 => self.push("-"),
            "tbl" if !empty => {
                if self.tables.is_empty() {
                    self.out.para();
                }
                self.tables.push(Table::default());
            }
            "tr" if !empty => {
                if let Some(t) = self.tables.last_mut() {
                    t.row.clear();
                }
            }
            "tc" if !empty => {
                if let Some(t) = self.tables.last_mut() {
                    t.cell = Some(Vec::new());
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, name: &str) -> Result<(), ParseError> {
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(());
        }
        match name {
            "r" => self.in_run = self.in_run.saturating_sub(1),
            "t" => self.in_text = self.in_text.saturating_sub(1),
            "p" => {
                if let Some(p) = self.paras.pop() {
                    self.paragraph(p)?;
                }
            }
            "tc" => {
                if let Some(t) = self.tables.last_mut()
                    && let Some(cell) = t.cell.take()
                {
                    t.row.push(cell.join(" "));
                }
            }
            "tr" => {
                if let Some(t) = self.tables.last_mut() {
                    let line = std::mem::take(&mut t.row).join(" | ");
                    if self.tables.len() > 1 {
                        // A nested table's row becomes text of the outer cell.
                        let outer = self.tables.len() - 2;
                        if let Some(cell) = self.tables[outer].cell.as_mut() {
                            cell.push(line);
                        }
                    } else {
                        self.out.line();
                        self.out.text(&line)?;
                    }
                }
            }
            "tbl" => {
                self.tables.pop();
                if self.tables.is_empty() {
                    self.out.para();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn paragraph(&mut self, p: Para) -> Result<(), ParseError> {
        let text = p.text.trim();
        if text.is_empty() {
            return Ok(());
        }
        if let Some(cell) = self.tables.last_mut().and_then(|t| t.cell.as_mut()) {
            cell.push(crate::builder::collapse_whitespace(text));
            return Ok(());
        }
        if let Some(level) = p.level {
            return self.out.heading(level, text);
        }
        self.out.para();
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.line();
            }
            self.out.text(line)?;
        }
        self.out.para();
        Ok(())
    }
}

/// `Heading3` → 3, `Title` → 0: the built-in style ids of English Word templates.
fn style_id_level(id: &str) -> Option<u8> {
    if id.eq_ignore_ascii_case("title") {
        return Some(0);
    }
    let n = id
        .strip_prefix("Heading")
        .or_else(|| id.strip_prefix("heading"))?;
    n.parse::<u8>().ok().filter(|n| (1..=9).contains(n))
}

/// Reads `word/styles.xml`: which paragraph style ids are headings (by their built-in name
/// `heading N` / `Title`, or an outline level), whatever the document's language.
fn heading_styles(xml: &[u8]) -> Result<HashMap<String, u8>, ParseError> {
    let xml = std::str::from_utf8(xml).map_err(|e| {
        ParseError::corrupt(Format::Docx, format!("word/styles.xml is not UTF-8 ({e})"))
    })?;
    let mut reader = Reader::from_str(xml);
    let mut map = HashMap::new();
    let mut current: Option<(String, Option<u8>)> = None;
    loop {
        match reader
            .read_event()
            .map_err(|e| xml_error("word/styles.xml", e))?
        {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => current = attr(&e, "styleId").map(|id| (id, None)),
                "name" => {
                    if let Some((_, level)) = current.as_mut() {
                        let name = attr(&e, "val").unwrap_or_default().to_ascii_lowercase();
                        if name == "title" {
                            *level = Some(0);
                        } else if let Some(n) = name.strip_prefix("heading ") {
                            *level = n.trim().parse::<u8>().ok().filter(|n| (1..=9).contains(n));
                        }
                    }
                }
                "outlineLvl" => {
                    if let Some((_, level @ None)) = current.as_mut() {
                        *level = attr(&e, "val")
                            .and_then(|v| v.parse::<u8>().ok())
                            .filter(|n| *n <= 8)
                            .map(|n| n + 1);
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "style" => {
                if let Some((id, Some(level))) = current.take() {
                    map.insert(id, level);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(map)
}
