//! `/ui/login`: the login form of a server with API keys (the key check in [`crate::auth`]
//! takes the post). On a server without keys it sends the visitor to the overview.

use axum::Extension;
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::html::Page;
use super::{Ui, see_other};
use crate::auth::LoginRequired;

#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    error: Option<String>,
}

pub(super) async fn form(
    login: Option<Extension<LoginRequired>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if login.is_none() {
        // No keys configured: the dashboard is open.
        return see_other("/");
    }
    let error = match q.error.as_deref() {
        Some("scope") => "<p class=\"error\" role=\"alert\">That key lacks the admin scope.</p>",
        Some(_) => "<p class=\"error\" role=\"alert\">That key is not valid.</p>",
        None => "",
    };
    let body = format!(
        r#"<section class="login card">
<h1>docket</h1>
<p>Log in with an API key that has the <code>admin</code> scope.</p>
{error}
<form method="post" action="/ui/login">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</section>"#
    );
    Html(
        Page::new("Log in", "")
            .body(body)
            .bare()
            .render(&Ui::default()),
    )
    .into_response()
}
