//! The operator commands' human tables: a header row, columns as wide as their widest cell on
//! screen (so long kinds and worker ids never push a row out of line), numbers right-aligned, and
//! times shown relative to now ("3m ago", "in 5m"), which is what an operator scans for.

use chrono::{DateTime, Utc};

/// A column: its header and whether its cells are right-aligned (numbers).
#[derive(Clone, Copy)]
pub(crate) struct Column {
    header: &'static str,
    right: bool,
}

/// A left-aligned column.
pub(crate) const fn left(header: &'static str) -> Column {
    Column {
        header,
        right: false,
    }
}

/// A right-aligned column.
pub(crate) const fn right(header: &'static str) -> Column {
    Column {
        header,
        right: true,
    }
}

/// Rows under headers, rendered aligned.
pub(crate) struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(columns: &[Column]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column; a cell's first line only.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        // A cell's first line, its control characters (a tab in an error) made spaces.
        let cells = cells
            .into_iter()
            .map(|c| {
                let first = c.lines().next().unwrap_or("").trim_end();
                first
                    .chars()
                    .map(|ch| if ch.is_control() { ' ' } else { ch })
                    .collect()
            })
            .collect();
        self.rows.push(cells);
    }

    /// The table, a line per row and a newline after each; the last column is not padded.
    pub(crate) fn render(&self) -> String {
        // Display width: a wide character (CJK) takes two columns.
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| console::measure_text_width(&r[i]))
                .chain([self.columns[i].header.len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.columns.len()).map(width).collect();
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_owned()).collect();
        let mut out = String::new();
        for cells in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                let pad = widths[i].saturating_sub(console::measure_text_width(cell));
                if i > 0 {
                    line.push_str("  ");
                }
                if self.columns[i].right {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `t` relative to `now`: "now", "42s ago", "in 5m", "3h ago", "2d ago".
pub(crate) fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let span = |s: i64| match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    match secs {
        0 => "now".to_owned(),
        s if s > 0 => format!("{} ago", span(s)),
        s => format!("in {}", span(-s)),
    }
}

/// A duration in milliseconds, short: "850ms", "12.3s", "4m05s", "2h10m".
pub(crate) fn duration_ms(ms: i64) -> String {
    match ms {
        ..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// An absolute time for detail views: UTC to the millisecond.
pub(crate) fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_numbers_align_right() {
        let mut t = Table::new(&[right("ID"), left("KIND"), left("ERROR")]);
        t.row(vec!["7".into(), "docket.sweep_documents".into(), "".into()]);
        t.row(vec![
            "1234".into(),
            "parse".into(),
            "bad\nsecond line".into(),
        ]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "  ID  KIND                    ERROR",
                "   7  docket.sweep_documents",
                "1234  parse                   bad",
            ]
        );
    }

    #[test]
    fn wide_characters_and_control_characters_keep_columns_aligned() {
        let mut t = Table::new(&[left("A"), left("B")]);
        t.row(vec!["文書".into(), "x".into()]);
        t.row(vec!["a\tb".into(), "y".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["A     B", "文書  x", "a b   y"]);
    }

    #[test]
    fn times_read_relative_to_now() {
        let now = Utc::now();
        let s = chrono::Duration::seconds;
        assert_eq!(ago(now, now), "now");
        assert_eq!(ago(now - s(42), now), "42s ago");
        assert_eq!(ago(now + s(300), now), "in 5m");
        assert_eq!(ago(now - s(7200), now), "2h ago");
        assert_eq!(ago(now - s(200_000), now), "2d ago");
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_345), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(7_800_000), "2h10m");
    }
}
