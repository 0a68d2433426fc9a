//! A reader of `text/event-stream` bodies (server-sent events), for `submit --wait`.

/// One server-sent event.
#[derive(Debug, PartialEq)]
pub(crate) struct SseEvent {
    /// `event:` (default `message`).
    pub(crate) event: String,
    /// The `data:` lines, joined by newlines.
    pub(crate) data: String,
}

/// Splits a `text/event-stream` body into events, whatever the chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.partial.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(n) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let end = start + n;
            let line = self.partial[start..end]
                .strip_suffix(b"\r")
                .unwrap_or(&self.partial[start..end]);
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if let Some(ev) = self.line(&line) {
                events.push(ev);
            }
        }
        self.partial.drain(..start);
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            // A blank line dispatches the event; one without data is dropped.
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            let event = if event.is_empty() {
                "message".to_owned()
            } else {
                event
            };
            return Some(SseEvent { event, data });
        }
        if line.starts_with(':') {
            return None; // a comment: the keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry: not needed here
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_comments_and_crlf() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nevent: progr").is_empty());
        assert!(p.push(b"ess\r\ndata: {\"a\":").is_empty());
        let evs = p.push(b"1}\r\n\r\ndata: x\ndata:y\n\n");
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: "progress".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "message".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }
}
