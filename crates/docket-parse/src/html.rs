//! HTML: boilerplate stripped, headings kept as sections, blocks as paragraphs.
//!
//! The document is read as a stream of html5ever tokens with a hand-kept stack of open
//! elements instead of a DOM: no recursion anywhere, and every step is bounded, so neither
//! 100 000 nested `<div>`s nor unmatched end tags can overflow the stack or go quadratic.
//! End tags close what they match (implied ends such as `<p>…<p>`, `<li>…<li>` and
//! `<td>…<td>` are honoured); anything unmatched is ignored.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use crate::builder::Builder;
use crate::text::{decode_text, normalize_newlines};
use crate::{Format, Limits, ParseError, Parsed};

/// Elements whose whole subtree is boilerplate or not visible text.
const SKIP: &[&str] = &[
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template", "head",
    "title", "iframe", "object", "embed", "svg", "math", "canvas", "button", "select", "dialog",
    "textarea", "noembed", "noframes", "xmp",
];

/// ARIA landmark roles that are page furniture, not content: skipped like `<nav>`,
/// `<header>`, `<footer>` and `<aside>` (Sphinx's breadcrumbs are `<div role="navigation">`).
const SKIP_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
];

/// Classes of the permalink anchors documentation generators put in headings (Sphinx's `¶`,
/// markdown-it's and mkdocs' `#`, font-icon links): skipped with their glyphs.
const SKIP_CLASSES: &[&str] = &[
    "headerlink",
    "header-anchor",
    "anchor-link",
    "anchorjs-link",
];

/// Whether a start tag's subtree is boilerplate: a [`SKIP`] element, `hidden`, a [`SKIP_ROLES`]
/// landmark, `aria-hidden="true"`, or a permalink anchor ([`SKIP_CLASSES`]).
fn skipped(name: &str, tag: &Tag) -> bool {
    SKIP.contains(&name)
        || tag.attrs.iter().any(|a| match &*a.name.local {
            "hidden" => true,
            "role" => SKIP_ROLES.contains(&a.value.trim().to_ascii_lowercase().as_str()),
            "aria-hidden" => a.value.trim().eq_ignore_ascii_case("true"),
            "class" => {
                name == "a"
                    && a.value
                        .split_ascii_whitespace()
                        .any(|c| SKIP_CLASSES.contains(&c))
            }
            _ => false,
        })
}

/// Private-use characters (U+E000–U+F8FF) are icon-font glyphs (U+F0C1, the link icon), not
/// text.
fn without_icons(t: &str) -> std::borrow::Cow<'_, str> {
    if t.chars().any(|c| ('\u{E000}'..='\u{F8FF}').contains(&c)) {
        t.chars()
            .filter(|c| !('\u{E000}'..='\u{F8FF}').contains(c))
            .collect::<String>()
            .into()
    } else {
        t.into()
    }
}

/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "body",
    "blockquote",
    "figure",
    "figcaption",
    "address",
    "dl",
    "ul",
    "ol",
    "table",
    "hr",
    "details",
    "summary",
    "fieldset",
    "center",
    "pre",
    "caption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "html",
];

/// Elements that start and end a line.
const LINES: &[&str] = &["li", "tr", "dt", "dd", "br", "thead", "tbody", "tfoot"];

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen",
];

/// Phrasing elements an implied `</p>` looks through.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "tt", "u",
    "var",
];

/// How far down the stack an end tag or implied end looks for its element.
const MATCH_WINDOW: usize = 256;

pub(crate) fn parse_html(bytes: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    let source = decode_text(bytes, Format::Html)?;
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(&source));
    let sink = Sink(RefCell::new(State::new(limits)));
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let state = tokenizer.sink.0.into_inner();
    state.finish()
}

struct Sink(RefCell<State>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().token(token)
    }
}

/// A part of the page text is gathered for: everything, the first `<main>`, all `<article>`s.
struct Region {
    out: Builder,
    /// Stack index of the element that opened the region, while inside it.
    open: Option<usize>,
    done: bool,
}

struct State {
    stack: Vec<String>,
    regions: [Region; 3],
    /// Stack index of the element whose subtree is being skipped.
    skip: Option<usize>,
    /// Heading being collected: (level, text, stack index).
    heading: Option<(u8, String, usize)>,
    pre: usize,
    /// Cell counters of the open table rows.
    rows: Vec<usize>,
    error: Option<ParseError>,
}

const ALL: usize = 0;
const MAIN: usize = 1;
const ARTICLE: usize = 2;

impl State {
    fn new(limits: &Limits) -> Self {
        let region = || Region {
            out: Builder::new(limits),
            open: None,
            done: false,
        };
        State {
            stack: Vec::new(),
            regions: [region(), region(), region()],
            skip: None,
            heading: None,
            pre: 0,
            rows: Vec::new(),
            error: None,
        }
    }

    /// Applies `f` to the builder of every region currently open.
    fn emit(&mut self, f: impl Fn(&mut Builder) -> Result<(), ParseError>) {
        for (i, r) in self.regions.iter_mut().enumerate() {
            if (i == ALL || r.open.is_some())
                && let Err(e) = f(&mut r.out)
            {
                self.error.get_or_insert(e);
            }
        }
    }

    fn token(&mut self, token: Token) -> TokenSinkResult<()> {
        if self.error.is_some() {
            return TokenSinkResult::Continue;
        }
        match token {
            Token::CharacterTokens(t) => self.characters(&t),
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => return self.start(&tag),
                TagKind::EndTag => self.end(&tag.name),
            },
            Token::EOFToken => {
                while !self.stack.is_empty() {
                    self.pop();
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }

    fn characters(&mut self, t: &str) {
        if self.skip.is_some() {
            return;
        }
        let t = &*without_icons(t);
        if let Some((_, h, _)) = self.heading.as_mut() {
            h.push_str(t);
        } else if self.pre > 0 {
            let t = normalize_newlines(t);
            self.emit(|b| b.raw(&t));
        } else {
            self.emit(|b| b.text(t));
        }
    }

    fn start(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        let raw = match name {
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        };

        if VOID.contains(&name) || (tag.self_closing && !matches!(raw, TokenSinkResult::RawData(_)))
        {
            if self.skip.is_none() {
                match name {
                    "br" => self.emit(|b| {
                        b.line();
                        Ok(())
                    }),
                    "hr" => self.emit(|b| {
                        b.para();
                        Ok(())
                    }),
                    _ => {}
                }
            }
            return raw;
        }

        self.implied_end(name);
        let index = self.stack.len();
        self.stack.push(name.to_owned());
        if self.skip.is_some() {
            return raw;
        }
        if skipped(name, tag) {
            self.skip = Some(index);
            return raw;
        }
        if let Some(level) = heading_level(name) {
            if self.heading.is_none() {
                self.emit(|b| {
                    b.para();
                    Ok(())
                });
                self.heading = Some((level, String::new(), index));
            }
        } else if BLOCKS.contains(&name) {
            self.emit(|b| {
                b.para();
                Ok(())
            });
            if name == "pre" {
                self.pre += 1;
            }
        } else if LINES.contains(&name) {
            self.emit(|b| {
                b.line();
                Ok(())
            });
            if name == "tr" {
                self.rows.push(0);
            }
        } else if matches!(name, "td" | "th") {
            let separate = self.rows.last().is_some_and(|cells| *cells > 0);
            if let Some(cells) = self.rows.last_mut() {
                *cells += 1;
            }
            if separate {
                self.emit(|b| {
                    b.cell();
                    Ok(())
                });
            }
        }
        // Regions open after the separator above, so they start clean.
        let role_main = || {
            tag.attrs
                .iter()
                .any(|a| &*a.name.local == "role" && a.value.trim().eq_ignore_ascii_case("main"))
        };
        let region = match name {
            "main" => Some(MAIN),
            "article" => Some(ARTICLE),
            _ if role_main() => Some(MAIN),
            _ => None,
        };
        if let Some(r) = region {
            let r = &mut self.regions[r];
            if r.open.is_none() && !r.done {
                r.open = Some(index);
            }
        }
        raw
    }

    /// Closes elements a start tag implicitly ends (`<li>` ends an open `<li>`, a block ends
    /// an open `<p>`, ...).
    fn implied_end(&mut self, name: &str) {
        let (targets, through): (&[&str], &[&str]) = match name {
            "li" => (
                &["li"],
                &["p", "div", "span", "a", "b", "i", "em", "strong"],
            ),
            "dt" | "dd" => (&["dt", "dd"], &["p", "div"]),
            "td" | "th" => (&["td", "th"], &["p", "div", "span"]),
            "tr" => (&["tr"], &["td", "th", "p", "div", "span"]),
            "thead" | "tbody" | "tfoot" => {
                (&["thead", "tbody", "tfoot", "tr"], &["td", "th", "tr"])
            }
            "option" => (&["option"], &[]),
            n if heading_level(n).is_some() => (&["p", "h1", "h2", "h3", "h4", "h5", "h6"], INLINE),
            n if BLOCKS.contains(&n) || LINES.contains(&n) => (&["p"], INLINE),
            _ => return,
        };
        let mut found = None;
        for (depth, open) in self.stack.iter().enumerate().rev().take(MATCH_WINDOW) {
            if targets.contains(&open.as_str()) {
                found = Some(depth);
                break;
            }
            if !through.contains(&open.as_str()) {
                break;
            }
        }
        if let Some(depth) = found {
            while self.stack.len() > depth {
                self.pop();
            }
        }
    }

    fn end(&mut self, name: &str) {
        let found = self
            .stack
            .iter()
            .enumerate()
            .rev()
            .take(MATCH_WINDOW)
            .find(|(_, open)| open.as_str() == name)
            .map(|(i, _)| i);
        if let Some(depth) = found {
            while self.stack.len() > depth {
                self.pop();
            }
        } else if name == "br" {
            self.emit(|b| {
                b.line();
                Ok(())
            });
        }
    }

    fn pop(&mut self) {
        let Some(name) = self.stack.pop() else { return };
        let index = self.stack.len();
        match self.skip {
            Some(s) if s == index => {
                self.skip = None;
                return;
            }
            Some(_) => return,
            None => {}
        }
        if self.heading.as_ref().is_some_and(|(_, _, i)| *i == index) {
            if let Some((level, title, _)) = self.heading.take() {
                self.emit(|b| b.heading(level, &title));
            }
        } else if BLOCKS.contains(&name.as_str()) {
            self.emit(|b| {
                b.para();
                Ok(())
            });
            if name == "pre" {
                self.pre = self.pre.saturating_sub(1);
            }
        } else if LINES.contains(&name.as_str()) {
            self.emit(|b| {
                b.line();
                Ok(())
            });
            if name == "tr" {
                self.rows.pop();
            }
        }
        for (i, r) in self.regions.iter_mut().enumerate() {
            if r.open == Some(index) {
                r.open = None;
                // Every <article> counts; only the first <main>.
                r.done = i == MAIN;
            }
        }
    }

    fn finish(self) -> Result<Parsed, ParseError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let [all, main, article] = self.regions;
        let chosen = [main, article]
            .into_iter()
            .map(|r| r.out.finish(Format::Html))
            .find(|p| p.as_ref().is_ok_and(|p| !p.text.trim().is_empty()));
        match chosen {
            Some(p) => p,
            None => all.out.finish(Format::Html),
        }
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(s: &str) -> Parsed {
        parse_html(s.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn implied_ends_and_tables() {
        let p = html("<body><p>one<p>two<ul><li>a<li>b</ul><table><tr><td>x<td>y<tr><td>z</table>");
        assert_eq!(p.text, "one\n\ntwo\n\na\nb\n\nx | y\nz");
    }

    #[test]
    fn unmatched_end_tags_are_ignored() {
        let p = html("<div>kept</span></b> text</div></div></p>");
        assert_eq!(p.text, "kept text");
    }

    #[test]
    fn script_contents_are_raw_and_skipped() {
        let p = html("<p>a</p><script>if (x < 1) { document.write('<p>no</p>') }</script><p>b</p>");
        assert_eq!(p.text, "a\n\nb");
    }

    #[test]
    fn self_closing_skip_elements_do_not_swallow_the_page() {
        let p = html("<p>before</p><svg/><p>after</p>");
        assert_eq!(p.text, "before\n\nafter");
    }

    #[test]
    fn article_is_preferred_over_the_page() {
        let p = html(
            "<div>menu junk</div><article><h1>T</h1><p>body</p></article><div>more junk</div>",
        );
        assert_eq!(p.text, "T\n\nbody");
        assert_eq!(p.sections[0].heading_path, ["T"]);
    }

    /// What a Sphinx (Read the Docs theme) page looks like: breadcrumbs in a navigation role,
    /// the content in `role="main"`, permalink anchors and icon glyphs in headings.
    #[test]
    fn documentation_chrome_is_dropped() {
        let p = html(concat!(
            "<body><div class=\"wy-nav-content\">",
            "<div role=\"navigation\" aria-label=\"breadcrumbs navigation\"><ul><li>Tools</li>",
            "<li>Guide</li><li><a href=\"_sources/x.txt\">View page source</a></li></ul></div>",
            "<div class=\"document\" role=\"main\">",
            "<h1>Structure handling<a class=\"headerlink\" href=\"#s\" title=\"Link\">¶</a></h1>",
            "<h2><a class=\"reference\" href=\"#u\">Usage \u{F0C1}</a></h2>",
            "<p>Handles may be used in parallel.<span aria-hidden=\"true\">icon</span></p>",
            "</div>",
            "<div role=\"contentinfo\"><p>© Copyright 2026.</p></div>",
            "</div><div>page junk</div></body>"
        ));
        assert_eq!(
            p.text,
            "Structure handling\n\nUsage\n\nHandles may be used in parallel."
        );
        assert_eq!(
            p.sections.last().unwrap().heading_path,
            ["Structure handling", "Usage"]
        );
    }

    #[test]
    fn pre_keeps_line_breaks() {
        let p = html("<pre>a  b\n  c</pre><p>x   y</p>");
        assert_eq!(p.text, "a  b\n  c\n\nx y");
    }
}
