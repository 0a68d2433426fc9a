//! Markdown: the source is kept as the text; sections start at headings.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::builder::collapse_whitespace;
use crate::text::decode_text;
use crate::{Format, Limits, ParseError, Parsed, Section};

pub(crate) fn parse_markdown(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let text = decode_text(bytes, Format::Markdown)?;
    let text = text.trim_end().to_owned();
    if text.len() as u64 > limits.max_text_bytes {
        return Err(ParseError::text_too_large(limits));
    }

    // (byte offset where the heading starts, level, title)
    let mut headings: Vec<(usize, u8, String)> = Vec::new();
    let mut current: Option<(usize, u8, String)> = None;
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    for (event, range) in Parser::new_ext(&text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((range.start, level_number(level), String::new()));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((start, level, title)) = current.take() {
                    let title = collapse_whitespace(&title);
                    if !title.is_empty() {
                        headings.push((start, level, title));
                    }
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) => {
                if let Some((_, _, title)) = current.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = current.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }

    let mut sections = Vec::new();
    let mut stack: Vec<(u8, String)> = Vec::new();
    let mut start = 0usize;
    let mut path: Vec<String> = Vec::new();
    for (offset, level, title) in headings {
        if offset > start {
            sections.push(Section {
                start,
                end: offset,
                heading_path: path.clone(),
                page: None,
            });
        }
        while stack.last().is_some_and(|(l, _)| *l >= level) {
            stack.pop();
        }
        stack.push((level, title));
        path = stack.iter().map(|(_, t)| t.clone()).collect();
        start = offset;
    }
    if text.len() > start {
        sections.push(Section {
            start,
            end: text.len(),
            heading_path: path,
            page: None,
        });
    }
    Ok(Parsed {
        format: Format::Markdown,
        text,
        sections,
    })
}

fn level_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}
