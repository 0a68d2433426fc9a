//! The operator dashboard: server-rendered HTML pages over the same data as the JSON API,
//! with a few lines of hand-written JavaScript that refresh the live parts of a page as soon as
//! a document's progress event arrives (server-sent events, `/ui/events`) and every few
//! seconds besides (job and queue changes have no event). No build step, no CDN, no inline
//! script: the stylesheet and the script are compiled into the binary.
//!
//! | page | module | |
//! |---|---|---|
//! | `/` | [`overview`] | jobs by state and kind, throughput, queues, workers, leader |
//! | `/ui/jobs` | [`jobs`] | jobs, filtered by state, kind, queue, document; maintenance jobs hidden unless asked for |
//! | `/ui/jobs/failed` | [`jobs`] | the dead-letter view, with bulk retry and discard (confirmed) |
//! | `/ui/jobs/stuck` | [`stuck`] | running jobs whose worker's lease lapsed: worker, last heartbeat, running time; cancel |
//! | `/ui/jobs/{id}` | [`jobs`] | a job: payload, attempts, timeline; retry, run now, cancel, discard |
//! | `/ui/documents` | [`documents`] | documents with live progress, paused queues; upload |
//! | `/ui/documents/{id}` | [`documents`] | a document and its chunks, a page at a time; reprocess, cancel, delete |
//! | `/ui/queues` | [`queues`] | queues (pause, confirmed; resume) and cron schedules (run now, history) |
//! | `/ui/audit` | [`audit`] | the audit trail: every operator action, who, when, which jobs |
//! | `/ui/alerts` | [`alerts`] | alerts firing and pending, silences (silence a rule, end one), history |
//! | `/ui/analytics` | [`analytics`] | throughput per day, stage timings per day, top failure reasons |
//! | `/ui/login` | [`login`] | the login form (servers with keys) |
//!
//! The actions (in [`actions`]) share the API's functions, so every one of them lands in the
//! audit trail; each answers with a redirect back and a message saying what it did
//! ([`flash`]), and the bulk and pausing ones first ask for a confirmation ([`confirm`]).
//! While any alert fires (and no silence covers it), every page opens with a banner naming it
//! ([`alerts::banner`]).
//!
//! Access is checked in [`crate::auth`] (a session cookie from `/ui/login`). Forms that change
//! state are POSTs; cross-site forgery is refused by the session cookie's `SameSite=Strict`
//! and, for every POST, by [`same_origin`] (the browser's `Sec-Fetch-Site` and `Origin`
//! headers must not name another site), so the forms carry no separate token.

mod actions;
mod alerts;
mod analytics;
mod audit;
mod confirm;
mod documents;
mod embedder;
mod flash;
mod html;
mod jobs;
mod login;
mod overview;
mod queues;
mod stuck;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use docket_core::Driver;

use crate::AppState;
use crate::auth::DashboardUser;
use flash::Flash;
use html::{Page, esc};

pub(crate) fn routes<D: Driver>(state: AppState<D>) -> Router<AppState<D>> {
    Router::new()
        .route("/", get(overview::page::<D>))
        .route("/ui/login", get(login::form))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route("/ui/jobs", get(jobs::list::<D>))
        .route("/ui/jobs/failed", get(jobs::failed::<D>))
        .route("/ui/jobs/stuck", get(stuck::stuck::<D>))
        .route("/ui/jobs/retry", post(actions::retry_many::<D>))
        .route("/ui/jobs/discard", post(actions::discard_many::<D>))
        .route("/ui/jobs/{id}", get(jobs::job::<D>))
        .route("/ui/jobs/{id}/retry", post(actions::retry_one::<D>))
        .route("/ui/jobs/{id}/run-now", post(actions::run_now_one::<D>))
        .route("/ui/jobs/{id}/discard", post(actions::discard_one::<D>))
        .route("/ui/jobs/{id}/cancel", post(actions::cancel_one::<D>))
        .route(
            "/ui/documents",
            get(documents::list::<D>).post(documents::upload::<D>),
        )
        .route("/ui/documents/{id}", get(documents::document::<D>))
        .route(
            "/ui/documents/{id}/reprocess",
            post(actions::reprocess::<D>),
        )
        .route(
            "/ui/documents/{id}/cancel",
            post(actions::cancel_document::<D>),
        )
        .route("/ui/documents/{id}/delete", post(actions::delete::<D>))
        .route("/ui/queues", get(queues::page::<D>))
        .route("/ui/queues/{name}/pause", post(actions::pause::<D>))
        .route("/ui/queues/{name}/resume", post(actions::resume::<D>))
        .route("/ui/audit", get(audit::page::<D>))
        .route("/ui/alerts", get(alerts::page::<D>))
        .route("/ui/analytics", get(analytics::page::<D>))
        .route("/ui/alerts/silence", post(alerts::silence::<D>))
        .route("/ui/alerts/silences/{id}/end", post(alerts::end::<D>))
        .route("/ui/reindex", post(embedder::reindex::<D>))
        .route("/ui/cron/{name}/run", post(actions::cron_run::<D>))
        // Every document's progress, as `GET /v1/events` streams it, for the pages' script
        // (behind the dashboard's session rather than a bearer key).
        .route("/ui/events", get(crate::all_events::<D>))
        .route_layer(axum::middleware::from_fn(flash::middleware))
        .route_layer(axum::middleware::from_fn_with_state(state, banner::<D>))
        .route_layer(axum::middleware::from_fn(refuse_cross_site))
}

/// Pages (GETs other than the assets, the event stream and the login form) read the alert
/// banner first.
async fn banner<D: Driver>(
    state: axum::extract::State<AppState<D>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let page = req.method() == axum::http::Method::GET
        && !path.starts_with("/ui/assets/")
        && path != "/ui/events"
        && path != "/ui/login";
    if page {
        alerts::banner(state, req, next).await
    } else {
        next.run(req).await
    }
}

/// Whether a request comes from the dashboard's own pages (or from no page at all, like a
/// test client): `Sec-Fetch-Site` is `same-origin` or `none` when the browser sends it (a
/// header pages cannot set); without it, `Origin`, when sent, names the host the request was
/// sent to. The pages' `Referrer-Policy: no-referrer` makes browsers send `Origin: null` on
/// their own form posts, so a browser that says `same-origin` is believed over its `Origin`.
pub(crate) fn same_origin(req: &Request) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            host.is_some() && origin_host == host
        }
    }
}

async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST && !same_origin(&req) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    next.run(req).await
}

/// What the frame around every page needs from the request: who is logged in (none on an
/// open server) and the message the last action left ([`flash`]).
#[derive(Debug, Clone, Default)]
pub(super) struct Ui {
    user: Option<String>,
    flash: Option<Flash>,
    banner: Option<alerts::Banner>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ui {
            user: parts
                .extensions
                .get::<DashboardUser>()
                .map(|u| u.key_name.clone()),
            flash: parts.extensions.get::<Flash>().cloned(),
            banner: parts.extensions.get::<alerts::Banner>().cloned(),
        })
    }
}

impl Ui {
    /// A whole page: `title` in the frame, `nav` the navigation entry it belongs to.
    fn page(&self, title: &str, nav: &str, body: String) -> Response {
        Html(Page::new(title, nav).body(body).render(self)).into_response()
    }
}

/// A page-level error: shown as a page, not JSON.
#[derive(Debug)]
pub(super) struct UiError(StatusCode, String);

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let body = Page::new("Error", "")
            .body(format!(
                "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/\">Back to the overview</a></p>",
                self.0.as_u16(),
                esc(&self.1)
            ))
            .render(&Ui::default());
        (self.0, Html(body)).into_response()
    }
}

impl From<docket_core::Error> for UiError {
    fn from(e: docket_core::Error) -> Self {
        let crate::ApiError(s, m) = e.into();
        UiError(s, m)
    }
}

impl From<docket_pipeline::PipelineError> for UiError {
    fn from(e: docket_pipeline::PipelineError) -> Self {
        let crate::ApiError(s, m) = e.into();
        UiError(s, m)
    }
}

pub(super) type UiResult = Result<Response, UiError>;

pub(super) fn see_other(to: &str) -> Response {
    let loc = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, loc)]).into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("assets/app.js"),
    )
        .into_response()
}

/// A query value, trimmed; `None` when absent or blank.
pub(super) fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Rows on a page of the jobs and documents lists.
pub(super) const PAGE: i64 = 50;
