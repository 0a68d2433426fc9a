//! Confirmation, without script, for the actions that touch many jobs at once or stop a
//! queue: retrying or discarding dead letters in bulk, re-embedding, pausing a queue.
//!
//! Their forms post without `confirm=yes`. The server then changes nothing and answers with a
//! page that says what would happen (how many jobs, which queue), with the same form again,
//! its fields hidden, plus `confirm=yes`, and a way back. Only a post with `confirm=yes` acts,
//! so the step cannot be skipped by a page whose script did not load, nor by a stray click.

use std::fmt::Write as _;

use axum::response::Response;

use super::Ui;
use super::html::esc;

/// The field a confirmed post carries, as `confirm=yes`.
const FIELD: &str = "confirm";

/// Whether a form body says `confirm=yes`.
pub(super) fn given(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body).any(|(k, v)| k == FIELD && v == "yes")
}

/// The question to ask before acting.
pub(super) struct Ask {
    /// The page's heading, a question: "Retry every failed job?".
    pub(super) title: String,
    /// What would happen, as HTML (escaped by the caller).
    pub(super) detail: String,
    /// Where the confirmed form posts: the action's own URL.
    pub(super) action: String,
    /// The original form's fields, sent again.
    pub(super) fields: Vec<(String, String)>,
    /// The confirming button's text: "Retry 17 jobs".
    pub(super) button: String,
    /// Whether the action is destructive (a red button).
    pub(super) danger: bool,
    /// Where "Cancel" leads: the page the form was on.
    pub(super) back: String,
    /// The navigation entry the page belongs to.
    pub(super) nav: &'static str,
}

impl Ask {
    /// The confirmation page (`200`; nothing has changed).
    pub(super) fn page(self, ui: &Ui) -> Response {
        let mut b = String::new();
        let _ = write!(
            b,
            "<section class=\"card confirm\" id=\"confirm\" aria-labelledby=\"confirm-title\"><h1 id=\"confirm-title\">{}</h1><p>{}</p><form method=\"post\" action=\"{}\">",
            esc(&self.title),
            self.detail,
            esc(&self.action)
        );
        for (k, v) in &self.fields {
            let _ = write!(
                b,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            );
        }
        let _ = write!(
            b,
            "<input type=\"hidden\" name=\"{FIELD}\" value=\"yes\"><div class=\"toolbar\"><button type=\"submit\"{} id=\"confirm-yes\">{}</button> <a href=\"{}\" id=\"confirm-no\">Cancel</a></div></form></section>",
            if self.danger { " class=\"danger\"" } else { "" },
            esc(&self.button),
            esc(&self.back)
        );
        ui.page(&self.title, self.nav, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_confirm_yes_confirms() {
        assert!(given(b"all=1&confirm=yes"));
        assert!(given(b"confirm=yes"));
        for body in [
            &b""[..],
            b"all=1",
            b"confirm=",
            b"confirm=no",
            b"confirmyes",
            b"xconfirm=yes",
        ] {
            assert!(!given(body), "{}", String::from_utf8_lossy(body));
        }
    }
}
