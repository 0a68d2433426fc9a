//! Small HTML helpers: escaping, the page frame, and the formatting of times, sizes and
//! progress. Everything that comes from users or the database goes through [`esc`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

/// Escapes text for an HTML element or a quoted attribute.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (the result is also safe in HTML).
pub(super) fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A column heading.
#[derive(Debug, Clone, Copy)]
pub(super) enum Col<'a> {
    /// A column of text.
    Text(&'a str),
    /// A column of numbers (right-aligned).
    Num(&'a str),
    /// A column with no visible heading; the text is for screen readers.
    Hidden(&'a str),
}

/// Opens a horizontally scrollable table (with `class`, unless empty) under these headings;
/// the rows follow, then [`TABLE_END`]. A table of class `stack` turns into a card per row on
/// a phone (the stylesheet), each cell under the label in its `data-label`: give its cells one
/// ([`td`]).
pub(super) fn table_start(class: &str, cols: &[Col<'_>]) -> String {
    let mut b = String::from("<div class=\"scroll\"><table");
    if !class.is_empty() {
        let _ = write!(b, " class=\"{}\"", esc(class));
    }
    b.push_str("><thead><tr>");
    for c in cols {
        let _ = match c {
            Col::Text(t) => write!(b, "<th scope=\"col\">{}</th>", esc(t)),
            Col::Num(t) => write!(b, "<th scope=\"col\" class=\"num\">{}</th>", esc(t)),
            Col::Hidden(t) => write!(
                b,
                "<th scope=\"col\"><span class=\"sr-only\">{}</span></th>",
                esc(t)
            ),
        };
    }
    b.push_str("</tr></thead><tbody>");
    b
}

/// A cell of a `stack` table: `<td data-label="label" class="class">inner</td>` (`inner` is
/// HTML, escaped by the caller; `class` may be empty).
pub(super) fn td(label: &str, class: &str, inner: &str) -> String {
    if class.is_empty() {
        format!("<td data-label=\"{}\">{inner}</td>", esc(label))
    } else {
        format!(
            "<td data-label=\"{}\" class=\"{}\">{inner}</td>",
            esc(label),
            esc(class)
        )
    }
}

/// Closes what [`table_start`] opened.
pub(super) const TABLE_END: &str = "</tbody></table></div>";

/// The frame around a page's body: head, navigation, the live-update script.
pub(super) struct Page<'a> {
    title: &'a str,
    nav: &'a str,
    body: String,
    bare: bool,
}

const NAV: [(&str, &str, &str); 9] = [
    ("overview", "/", "Overview"),
    ("jobs", "/ui/jobs", "Jobs"),
    ("failed", "/ui/jobs/failed", "Dead letters"),
    ("stuck", "/ui/jobs/stuck", "Stuck"),
    ("documents", "/ui/documents", "Documents"),
    ("queues", "/ui/queues", "Queues and cron"),
    ("audit", "/ui/audit", "Audit"),
    ("alerts", "/ui/alerts", "Alerts"),
    ("analytics", "/ui/analytics", "Analytics"),
];

impl<'a> Page<'a> {
    pub(super) fn new(title: &'a str, nav: &'a str) -> Self {
        Self {
            title,
            nav,
            body: String::new(),
            bare: false,
        }
    }

    pub(super) fn body(mut self, body: String) -> Self {
        self.body = body;
        self
    }

    /// Without navigation (the login form).
    pub(super) fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// The whole document: the logged-in key's name (none on an open server) in the header,
    /// and the last action's message, if any, first in the main region.
    pub(super) fn render(self, ui: &super::Ui) -> String {
        let user = ui.user.as_deref();
        let mut h = String::with_capacity(self.body.len() + 2048);
        let _ = write!(
            h,
            r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · docket</title>
<link rel="stylesheet" href="/ui/assets/app.css">
<script src="/ui/assets/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
"##,
            esc(self.title)
        );
        if !self.bare {
            h.push_str("<header class=\"top\"><a class=\"brand\" href=\"/\">docket</a><nav aria-label=\"Main\"><ul>");
            for (key, href, label) in NAV {
                let current = if key == self.nav {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                let _ = write!(h, "<li><a href=\"{href}\"{current}>{label}</a></li>");
            }
            h.push_str("</ul></nav>");
            if let Some(u) = user {
                let _ = write!(
                    h,
                    "<form class=\"logout\" method=\"post\" action=\"/ui/logout\"><span class=\"who\" title=\"API key\">{}</span> <button type=\"submit\" class=\"secondary\">Log out</button> <button type=\"submit\" class=\"secondary\" formaction=\"/ui/logout?everywhere=1\" title=\"End every session of this key, in every browser\">Everywhere</button></form>",
                    esc(u)
                );
            }
            h.push_str("</header>");
        }
        let _ = write!(
            h,
            "<main id=\"main\" tabindex=\"-1\">{}{}{}</main>\n<p class=\"live-note\" aria-live=\"polite\" id=\"live-status\"></p>\n</body>\n</html>\n",
            ui.banner
                .as_ref()
                .map(super::alerts::banner_html)
                .unwrap_or_default(),
            ui.flash.as_ref().map(|f| f.html()).unwrap_or_default(),
            self.body
        );
        h
    }
}

/// A `<select>` with an "any" option, `current` selected.
pub(super) fn select<'s>(
    name: &str,
    label: &str,
    options: impl Iterator<Item = &'s str>,
    current: Option<&str>,
) -> String {
    let mut b = format!(
        "<div class=\"field\"><label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\"><option value=\"\">any</option>"
    );
    for o in options {
        let sel = if Some(o) == current { " selected" } else { "" };
        let _ = write!(b, "<option{sel}>{}</option>", esc(o));
    }
    b.push_str("</select></div>");
    b
}

pub(super) fn state_badge(s: &str) -> String {
    let class: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("<span class=\"badge state-{class}\">{}</span>", esc(s))
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        t.to_rfc3339(),
        t.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

pub(super) fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\" title=\"{}\">{} ago</time>",
        t.to_rfc3339(),
        t.format("%Y-%m-%d %H:%M:%S UTC"),
        duration(now - t)
    )
}

pub(super) fn duration(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

pub(super) fn millis(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

pub(super) fn bytes(n: i64) -> String {
    match n {
        ..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// `1 job`, `3 jobs`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// A progress bar (a `<progress>` element, which screen readers announce) with its figure.
pub(super) fn progress(p: i16, status: &str) -> String {
    let p = p.clamp(0, 100);
    format!(
        "<span class=\"progress state-{}\"><progress max=\"100\" value=\"{p}\" aria-label=\"progress\">{p} %</progress> <span class=\"pct\">{p} %</span></span>",
        esc(status)
    )
}

/// `{"parse_ms": 12, ...}` as `parse 12 ms · chunk 3 ms`.
pub(super) fn timings(t: &serde_json::Value) -> String {
    let Some(map) = t.as_object() else {
        return "—".into();
    };
    let parts: Vec<String> = map
        .iter()
        .filter_map(|(k, v)| {
            let ms = v.as_i64()?;
            Some(format!(
                "{} {}",
                esc(k.strip_suffix("_ms").unwrap_or(k)),
                millis(ms)
            ))
        })
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        format!("<small>{}</small>", parts.join(" · "))
    }
}

/// Completed jobs and failures (attempts that dead-lettered their job, counted when they
/// ended, so a dead letter retried later stays) per minute over the hour before `now` (60 bars,
/// the current minute last), as an inline SVG bar chart with its figures in text.
pub(super) fn throughput_chart(
    rows: &[docket_core::JobThroughputRow],
    now: DateTime<Utc>,
) -> String {
    let mut completed = [0i64; 60];
    let mut failed = [0i64; 60];
    let this_minute = now.timestamp().div_euclid(60);
    for r in rows {
        let ago = this_minute - r.minute.timestamp().div_euclid(60);
        if !(0..60).contains(&ago) {
            continue;
        }
        let i = 59 - ago as usize;
        completed[i] += r.completed;
        failed[i] += r.failed;
    }
    let total_c: i64 = completed.iter().sum();
    let total_f: i64 = failed.iter().sum();
    let peak = completed
        .iter()
        .zip(&failed)
        .map(|(c, f)| c + f)
        .max()
        .unwrap_or(0);
    let scale = peak.max(1) as f64;
    let (w, h) = (600.0_f64, 120.0_f64);
    let bw = w / 60.0;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"tp-title\" preserveAspectRatio=\"none\"><title id=\"tp-title\">Jobs finished per minute over the last hour: {total_c} completed, {total_f} failed; at most {peak} in a minute</title>"
    );
    for i in 0..60 {
        let x = i as f64 * bw + 1.0;
        let ch = completed[i] as f64 / scale * h;
        let fh = failed[i] as f64 / scale * h;
        if completed[i] > 0 {
            let _ = write!(
                svg,
                "<rect class=\"c\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ch:.1}\"><title>{} completed</title></rect>",
                h - ch,
                bw - 2.0,
                completed[i]
            );
        }
        if failed[i] > 0 {
            let _ = write!(
                svg,
                "<rect class=\"f\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{fh:.1}\"><title>{} failed</title></rect>",
                h - ch - fh,
                bw - 2.0,
                failed[i]
            );
        }
    }
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" class=\"axis\"/></svg>"
    );
    format!(
        "{svg}<div class=\"axis-labels\" aria-hidden=\"true\"><span>60 min ago</span><span>now</span></div><p class=\"legend\"><span class=\"key c\"></span> {total_c} completed <span class=\"key f\"></span> {total_f} failed · peak {peak} per minute</p>"
    )
}
