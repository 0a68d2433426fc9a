//! Assembles extracted text with paragraph breaks and heading sections.

use crate::{Format, Limits, ParseError, Parsed, Section};

/// Separator owed before the next piece of content; the strongest one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Break {
    None,
    Space,
    Cell,
    Line,
    Para,
}

/// Builds normalised text: collapses whitespace, separates blocks with blank lines, rows with
/// newlines and table cells with `" | "`, and cuts a new [`Section`] at every heading (the
/// heading's own text opens its section) or page.
pub(crate) struct Builder {
    out: String,
    pending: Break,
    headings: Vec<(u8, String)>,
    sections: Vec<Section>,
    section_start: usize,
    section_path: Vec<String>,
    section_page: Option<u32>,
    next_section: Option<(Vec<String>, Option<u32>)>,
    max: u64,
}

impl Builder {
    pub(crate) fn new(limits: &Limits) -> Self {
        Builder {
            out: String::new(),
            pending: Break::None,
            headings: Vec::new(),
            sections: Vec::new(),
            section_start: 0,
            section_path: Vec::new(),
            section_page: None,
            next_section: None,
            max: limits.max_text_bytes,
        }
    }

    fn owe(&mut self, b: Break) {
        self.pending = self.pending.max(b);
    }

    /// Writes the owed separator and opens a pending section, just before real content.
    fn before_content(&mut self) {
        if !self.out.is_empty() {
            match self.pending {
                Break::None => {}
                Break::Space => self.out.push(' '),
                Break::Cell => self.out.push_str(" | "),
                Break::Line => self.out.push('\n'),
                Break::Para => self.out.push_str("\n\n"),
            }
        }
        self.pending = Break::None;
        if let Some((path, page)) = self.next_section.take() {
            self.close_section();
            self.section_path = path;
            self.section_page = page;
        }
    }

    fn close_section(&mut self) {
        let end = self.out.len();
        if end > self.section_start {
            self.sections.push(Section {
                start: self.section_start,
                end,
                heading_path: self.section_path.clone(),
                page: self.section_page,
            });
        }
        self.section_start = end;
    }

    fn check(&self) -> Result<(), ParseError> {
        if self.out.len() as u64 > self.max {
            Err(ParseError::TooLarge {
                limit: crate::SizeLimit::Text,
                max_bytes: self.max,
            })
        } else {
            Ok(())
        }
    }

    /// Appends text, collapsing each run of whitespace to one space.
    pub(crate) fn text(&mut self, s: &str) -> Result<(), ParseError> {
        let mut rest = s;
        while !rest.is_empty() {
            let ws = rest
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(rest.len());
            if ws > 0 {
                self.owe(Break::Space);
                rest = &rest[ws..];
                continue;
            }
            let word = rest.find(char::is_whitespace).unwrap_or(rest.len());
            self.before_content();
            self.out.push_str(&rest[..word]);
            rest = &rest[word..];
        }
        self.check()
    }

    /// Appends text verbatim (preformatted blocks); `s` must already use `\n` line ends.
    pub(crate) fn raw(&mut self, s: &str) -> Result<(), ParseError> {
        if s.is_empty() {
            return Ok(());
        }
        self.before_content();
        self.out.push_str(s);
        self.check()
    }

    /// Ends the current line.
    pub(crate) fn line(&mut self) {
        self.owe(Break::Line);
    }

    /// Ends the current paragraph (a blank line follows).
    pub(crate) fn para(&mut self) {
        self.owe(Break::Para);
    }

    /// Separates table cells.
    pub(crate) fn cell(&mut self) {
        self.owe(Break::Cell);
    }

    /// Adds a heading of `level` (1 = outermost) as its own paragraph and starts a section
    /// under it.
    pub(crate) fn heading(&mut self, level: u8, title: &str) -> Result<(), ParseError> {
        let title = collapse_whitespace(title);
        if title.is_empty() {
            return Ok(());
        }
        self.para();
        while self.headings.last().is_some_and(|(l, _)| *l >= level) {
            self.headings.pop();
        }
        self.headings.push((level, title.clone()));
        let path = self.headings.iter().map(|(_, t)| t.clone()).collect();
        self.next_section = Some((path, None));
        self.text(&title)?;
        self.para();
        Ok(())
    }

    /// Starts the section of page `page` (1-based); headings are reset.
    pub(crate) fn page(&mut self, page: u32) {
        self.para();
        self.headings.clear();
        self.next_section = Some((Vec::new(), Some(page)));
    }

    pub(crate) fn finish(mut self, format: Format) -> Result<Parsed, ParseError> {
        self.close_section();
        self.check()?;
        Ok(Parsed {
            format,
            text: self.out,
            sections: self.sections,
        })
    }
}

/// Collapses whitespace runs to single spaces and trims the ends.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_tile_and_follow_headings() {
        let mut b = Builder::new(&Limits::default());
        b.text("  intro   text ").unwrap();
        b.heading(1, "Top").unwrap();
        b.text("body").unwrap();
        b.heading(2, "Sub").unwrap();
        b.text("a").unwrap();
        b.cell();
        b.text("b").unwrap();
        b.line();
        b.text("c").unwrap();
        b.heading(1, "Next").unwrap();
        b.text("end").unwrap();
        let p = b.finish(Format::Html).unwrap();
        assert_eq!(
            p.text,
            "intro text\n\nTop\n\nbody\n\nSub\n\na | b\nc\n\nNext\n\nend"
        );
        let paths: Vec<_> = p
            .sections
            .iter()
            .map(|s| s.heading_path.join("/"))
            .collect();
        assert_eq!(paths, ["", "Top", "Top/Sub", "Next"]);
        assert_eq!(p.sections[0].start, 0);
        for w in p.sections.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        assert_eq!(p.sections.last().unwrap().end, p.text.len());
        assert!(p.section_text(&p.sections[1]).starts_with("Top\n\nbody"));
    }

    #[test]
    fn text_limit_is_enforced() {
        let limits = Limits {
            max_text_bytes: 10,
            ..Limits::default()
        };
        let mut b = Builder::new(&limits);
        assert!(b.text("short").is_ok());
        assert!(matches!(
            b.text("and much longer"),
            Err(ParseError::TooLarge { .. })
        ));
    }
}
