//! What an action did, shown once on the page it leads back to: "3 jobs retried", "Queue
//! default paused."
//!
//! Every action answers with a redirect ([`redirect`]) that sets a short-lived cookie,
//! `docket_flash` (`HttpOnly; SameSite=Strict; Path=/; Max-Age=60`), holding the message. The
//! next page (a `GET` answered with HTML) shows it at the top of its main region, escaped, and
//! clears the cookie; the pages' live refresh (`X-Docket-Refresh: 1`, sent by `app.js`) neither
//! shows nor clears it, so a second tab's refresh cannot take it. The message is not in the URL:
//! a link cannot make the dashboard claim something it did not do, and a reload does not show it
//! again. No script is involved.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::html::esc;
use super::see_other;

/// The cookie's name.
pub(super) const COOKIE: &str = "docket_flash";

/// The request header the pages' live refresh sends.
pub(super) const REFRESH_HEADER: &str = "x-docket-refresh";

/// Messages are cut to this many characters (a cookie holds about 4 KiB).
const MAX_CHARS: usize = 300;

/// How the message reads: an action done, or done with a caveat (some jobs were left alone,
/// nothing was selected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Done,
    Warn,
}

/// A message for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Flash {
    level: Level,
    text: String,
}

impl Flash {
    pub(super) fn done(text: impl Into<String>) -> Self {
        Self::new(Level::Done, text.into())
    }

    pub(super) fn warn(text: impl Into<String>) -> Self {
        Self::new(Level::Warn, text.into())
    }

    fn new(level: Level, text: String) -> Self {
        let text = super::html::truncate(&text, MAX_CHARS);
        Self { level, text }
    }

    /// The message, as shown.
    pub(super) fn html(&self) -> String {
        let (class, role) = match self.level {
            Level::Done => ("done", "status"),
            Level::Warn => ("warn", "alert"),
        };
        format!(
            "<p class=\"flash {class}\" role=\"{role}\" id=\"flash\">{}</p>",
            esc(&self.text)
        )
    }

    /// `Set-Cookie` carrying it: `done.` or `warn.`, then the text form-urlencoded (nothing a
    /// cookie value may not hold).
    fn cookie(&self) -> HeaderValue {
        let level = match self.level {
            Level::Done => "done",
            Level::Warn => "warn",
        };
        let text: String = url::form_urlencoded::byte_serialize(self.text.as_bytes()).collect();
        HeaderValue::from_str(&format!(
            "{COOKIE}={level}.{text}; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        ))
        .unwrap_or_else(|_| clear())
    }

    /// The message in a `Cookie` header, if any.
    fn from_request(req: &Request) -> Option<Self> {
        let value = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v)?;
        let (level, text) = value.split_once('.')?;
        let level = match level {
            "done" => Level::Done,
            "warn" => Level::Warn,
            _ => return None,
        };
        let text = url::form_urlencoded::parse(format!("m={text}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .filter(|t| !t.trim().is_empty())?;
        Some(Self::new(level, text))
    }
}

/// `Set-Cookie` that clears the message.
fn clear() -> HeaderValue {
    HeaderValue::from_static("docket_flash=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// `303 See Other` to `to`, with `flash` for the page there.
pub(super) fn redirect(to: &str, flash: Flash) -> Response {
    let mut r = see_other(to);
    r.headers_mut().append(header::SET_COOKIE, flash.cookie());
    r
}

/// Hands a pending message to the page a `GET` asks for (a request extension that
/// [`super::Ui`] reads), and clears the cookie once a page has shown it.
pub(super) async fn middleware(mut req: Request, next: Next) -> Response {
    let eligible = req.method() == Method::GET && !req.headers().contains_key(REFRESH_HEADER);
    let flash = eligible.then(|| Flash::from_request(&req)).flatten();
    let Some(flash) = flash else {
        return next.run(req).await;
    };
    req.extensions_mut().insert(flash);
    let mut resp = next.run(req).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if resp.status() == StatusCode::OK && html {
        resp.headers_mut().append(header::SET_COOKIE, clear());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(cookie: &HeaderValue) -> Request {
        let pair = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Request::builder()
            .header(header::COOKIE, format!("docket_session=abc; {pair}"))
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn a_message_survives_its_cookie_and_is_escaped_when_shown() {
        for f in [
            Flash::done("3 jobs retried"),
            Flash::warn("Queue <b>\"x\"; y=1</b> paused, 100 % — ünïcode"),
        ] {
            let back = Flash::from_request(&request_with(&f.cookie())).unwrap();
            assert_eq!(back, f);
        }
        let html = Flash::warn("<script>alert(1)</script>").html();
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("role=\"alert\""), "{html}");
    }

    #[test]
    fn a_long_message_is_cut_and_a_strange_cookie_ignored() {
        let f = Flash::done("x".repeat(5000));
        assert!(f.cookie().len() < 1024);
        for bad in [
            "docket_flash=",
            "docket_flash=nope",
            "docket_flash=other.text",
        ] {
            let req = Request::builder()
                .header(header::COOKIE, bad)
                .body(axum::body::Body::empty())
                .unwrap();
            assert_eq!(Flash::from_request(&req), None, "{bad}");
        }
    }
}
