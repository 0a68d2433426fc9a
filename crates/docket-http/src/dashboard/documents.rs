//! The document pages: the list (`/ui/documents`: live progress, a notice while a queue is
//! paused, the upload form) and a document (`/ui/documents/{id}`: its facts and its chunks, a
//! page at a time).

use std::fmt::Write as _;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use docket_core::{
    ChunkListParams, DocumentListParams, DocumentStatus, DocumentStore, Driver, QueueExecutor,
    QueueRow,
};
use docket_pipeline::NewDocument;
use serde::Deserialize;
use uuid::Uuid;

use super::flash::{self, Flash};
use super::html::{self, Col, esc};
use super::{PAGE, Ui, UiError, UiResult, nonempty};
use crate::{AppState, UPLOAD_PRIORITY};

#[derive(Debug, Default, Deserialize)]
pub(super) struct DocsQuery {
    status: Option<String>,
    before: Option<Uuid>,
}

pub(super) async fn list<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Query(q): Query<DocsQuery>,
) -> UiResult {
    let status = nonempty(&q.status)
        .map(|s| s.parse::<DocumentStatus>())
        .transpose()
        .map_err(|e| UiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut c = s.pipeline.driver().conn().await?;
    let docs = c
        .document_list(&DocumentListParams {
            status,
            source: None,
            before: q.before,
            limit: PAGE,
        })
        .await?;
    let queues = c.queue_list().await?;
    drop(c);
    let now = Utc::now();
    let mut b = String::from("<h1>Documents</h1>");
    b.push_str(&paused_notice(&queues, now));
    b.push_str(
        r#"<form class="upload card" method="post" action="/ui/documents" enctype="multipart/form-data">
<div class="field"><label for="file">Upload a document</label><input id="file" name="file" type="file" required></div>
<div class="field check"><input id="reprocess" name="reprocess" type="checkbox" value="true"><label for="reprocess">process again if already known</label></div>
<div class="field actions"><button type="submit">Upload</button></div>
</form>"#,
    );
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/ui/documents\">");
    b.push_str(&html::select(
        "status",
        "Status",
        DocumentStatus::ALL.iter().map(|s| s.as_str()),
        q.status.as_deref(),
    ));
    b.push_str("<div class=\"field actions\"><button type=\"submit\" class=\"secondary\">Filter</button></div></form>");
    b.push_str("<section class=\"card\" id=\"doc-list\" data-live>");
    if docs.is_empty() {
        b.push_str("<p class=\"empty\">No documents yet. Upload one above, or send one to <code>POST /v1/documents</code>.</p>");
    } else {
        b.push_str(&html::table_start(
            "docs stack",
            &[
                Col::Text("document"),
                Col::Text("status"),
                Col::Text("progress"),
                Col::Num("size"),
                Col::Num("chunks"),
                Col::Text("timings"),
                Col::Text("created"),
                Col::Text("error"),
            ],
        ));
        for d in &docs {
            let status = format!(
                "{}{}",
                html::state_badge(d.status.as_str()),
                d.stage
                    .as_deref()
                    .filter(|_| !d.status.is_terminal())
                    .map(|s| format!(" <small>{}</small>", esc(s)))
                    .unwrap_or_default()
            );
            let _ = write!(
                b,
                "<tr data-document=\"{id}\">{}{}{}{}{}{}{}{}</tr>",
                html::td(
                    "document",
                    "",
                    &format!(
                        "<a href=\"/ui/documents/{}\">{}</a>",
                        d.id,
                        esc(d.filename.as_deref().unwrap_or("(unnamed)"))
                    )
                ),
                html::td("status", "", &status),
                html::td(
                    "progress",
                    "",
                    &html::progress(d.progress, d.status.as_str())
                ),
                html::td("size", "num", &html::bytes(d.size_bytes)),
                html::td("chunks", "num", &d.chunk_count.to_string()),
                html::td("timings", "", &html::timings(&d.timings)),
                html::td("created", "", &html::ago(now, d.created_at)),
                html::td(
                    "error",
                    "error-cell",
                    &esc(&html::truncate(d.error.as_deref().unwrap_or(""), 160))
                ),
                id = d.id,
            );
        }
        b.push_str(html::TABLE_END);
        if docs.len() as i64 == PAGE
            && let Some(last) = docs.last()
        {
            let _ = write!(
                b,
                "<p><a href=\"/ui/documents?before={}{}\">Older documents →</a></p>",
                last.id,
                nonempty(&q.status)
                    .map(|s| format!("&amp;status={}", html::url(&s)))
                    .unwrap_or_default()
            );
        }
    }
    b.push_str("</section>");
    Ok(ui.page("Documents", "documents", b))
}

pub(super) async fn upload<D: Driver>(
    State(s): State<AppState<D>>,
    mut form: Multipart,
) -> UiResult {
    let bad = |m: String| UiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let mut new = NewDocument {
        priority: UPLOAD_PRIORITY,
        ..NewDocument::default()
    };
    let mut has_file = false;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| UiError(e.status(), e.body_text()))?
    {
        match field.name() {
            Some("file") => {
                new.filename = field.file_name().map(crate::sanitize_filename);
                new.content_type = field.content_type().map(str::to_owned);
                new.bytes = field
                    .bytes()
                    .await
                    .map_err(|e| UiError(e.status(), e.body_text()))?;
                has_file = !new.bytes.is_empty() || new.filename.is_some();
            }
            Some("reprocess") => {
                new.reprocess = field.text().await.is_ok_and(|v| v == "true");
            }
            _ => {}
        }
    }
    if !has_file {
        return Err(bad("choose a file to upload".into()));
    }
    let reprocess = new.reprocess;
    let given = new.filename.clone();
    let done = s.pipeline.submit(new).await?;
    let d = &done.document;
    let name = given
        .or_else(|| d.filename.clone())
        .unwrap_or_else(|| "The document".to_owned());
    let msg = if done.created {
        Flash::done(format!("{name} uploaded: queued for processing."))
    } else if reprocess {
        Flash::done(format!(
            "{name} was already known (identical bytes): processing it again (generation {}).",
            d.generation
        ))
    } else {
        Flash::warn(format!(
            "{name} was already known (identical bytes, as {}): nothing new queued. Tick “process again” to reprocess it.",
            d.filename.as_deref().unwrap_or("an unnamed document")
        ))
    };
    // Back to the list, where the new document's progress bar moves live.
    Ok(flash::redirect("/ui/documents", msg))
}

pub(super) async fn document<D: Driver>(
    State(s): State<AppState<D>>,
    ui: Ui,
    Path(id): Path<Uuid>,
    Query(q): Query<DocQuery>,
) -> UiResult {
    let mut c = s.pipeline.driver().conn().await?;
    let d = c
        .document_get(id)
        .await?
        .ok_or_else(|| UiError(StatusCode::NOT_FOUND, format!("document {id} not found")))?;
    // The active generation's chunks, a page at a time: never all of them at once.
    let total = if d.active_generation.is_some() {
        i64::from(d.chunk_count.max(0))
    } else {
        0
    };
    let pager = Pager::new(id, q.page.as_deref(), total)?;
    let chunks = match d.active_generation {
        Some(g) if total > 0 => {
            c.chunk_list(ChunkListParams {
                document_id: id,
                generation: Some(g),
                limit: CHUNKS_PAGE,
                offset: pager.offset(),
            })
            .await?
        }
        _ => Vec::new(),
    };
    drop(c);
    let name = d.filename.as_deref().unwrap_or("(unnamed)");
    let mut b = format!("<h1>{}</h1>", esc(name));
    let _ = write!(
        b,
        r#"<div class="toolbar">
<form method="post" action="/ui/documents/{id}/reprocess"><button type="submit" class="secondary">Reprocess</button></form>{cancel}
<form method="post" action="/ui/documents/{id}/delete" data-confirm="Delete this document, its chunks and its bytes?"><button type="submit" class="danger">Delete</button></form>
<a href="/ui/jobs?document={id}">Its jobs</a>
</div>"#,
        cancel = if d.status.is_terminal() {
            String::new()
        } else {
            format!(
                "\n<form method=\"post\" action=\"/ui/documents/{id}/cancel\" data-confirm=\"Cancel this document? It stops where it is until it is reprocessed.\"><button type=\"submit\" class=\"danger\" id=\"cancel-document\">Cancel</button></form>"
            )
        }
    );
    b.push_str("<div id=\"doc-state\" data-live><dl class=\"facts card\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(b, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    };
    fact("id", format!("<code>{id}</code>"));
    fact("status", html::state_badge(d.status.as_str()));
    fact("progress", html::progress(d.progress, d.status.as_str()));
    fact("stage", esc(d.stage.as_deref().unwrap_or("—")));
    fact("timings", html::timings(&d.timings));
    fact("size", html::bytes(d.size_bytes));
    fact("type", esc(d.content_type.as_deref().unwrap_or("—")));
    fact("source", esc(d.source.as_str()));
    fact(
        "sha-256",
        format!("<code class=\"hash\">{}</code>", esc(&d.sha256)),
    );
    fact(
        "generation",
        format!(
            "{} (searchable: {})",
            d.generation,
            d.active_generation.map_or("none".into(), |g| g.to_string())
        ),
    );
    fact(
        "chunks",
        format!("{} ({} tokens)", d.chunk_count, d.token_count),
    );
    fact(
        "embedder",
        match (&d.embedder, &d.embedder_fingerprint) {
            (None, _) => "—".into(),
            (Some(name), fingerprint) => {
                let running = &s.pipeline.embedder().identity().fingerprint;
                let stale = if fingerprint.as_ref() == Some(running) {
                    ""
                } else {
                    " <span class=\"warn\">not searched: another embedder than the running one</span>"
                };
                format!(
                    "{} <small>({})</small>{stale}",
                    esc(name),
                    esc(fingerprint.as_deref().unwrap_or("not recorded"))
                )
            }
        },
    );
    fact("created", html::time(d.created_at));
    fact("completed", d.completed_at.map_or("—".into(), html::time));
    if let Some(e) = &d.error {
        fact(
            "error",
            format!(
                "<span class=\"error\">{}{}</span>",
                d.error_stage
                    .as_deref()
                    .map(|s| format!("{}: ", esc(s)))
                    .unwrap_or_default(),
                esc(e)
            ),
        );
    }
    b.push_str("</dl>");
    b.push_str("<section class=\"card\" id=\"chunks\"><h2>Chunks</h2>");
    if chunks.is_empty() {
        b.push_str(if d.status.is_terminal() {
            "<p class=\"empty\">This document has no searchable chunks.</p>"
        } else {
            "<p class=\"empty\">No chunks yet: they appear when processing completes.</p>"
        });
    } else {
        b.push_str(&pager.summary(chunks.len()));
        b.push_str("<ol class=\"chunks\">");
        for ch in &chunks {
            let _ = write!(
                b,
                "<li><div class=\"meta\">#{} · {} tokens{}{}</div><p>{}</p></li>",
                ch.chunk_index,
                ch.token_count,
                ch.page.map(|p| format!(" · page {p}")).unwrap_or_default(),
                if ch.heading_path.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", esc(&ch.heading_path.join(" › ")))
                },
                esc(&ch.text)
            );
        }
        b.push_str("</ol>");
        b.push_str(&pager.nav());
    }
    b.push_str("</section></div>");
    Ok(ui.page(name, "documents", b))
}

/// A notice for each paused queue (or the `*` switch), saying since when, with a button
/// that resumes it and brings the operator back here; empty while every queue runs. A live
/// region, so that it goes when the queue is resumed elsewhere.
fn paused_notice(queues: &[QueueRow], now: DateTime<Utc>) -> String {
    let mut b = String::from("<div id=\"paused-queues\" data-live>");
    let mut paused: Vec<&QueueRow> = queues.iter().filter(|q| q.paused_at.is_some()).collect();
    // The switch for every queue first.
    paused.sort_by_key(|q| (q.name != docket_core::ALL_QUEUES, q.name.clone()));
    for q in paused {
        let since = q
            .paused_at
            .map(|t| format!("{}, {}", html::time(t), html::ago(now, t)))
            .unwrap_or_default();
        let (what, consequence, label) = if q.name == docket_core::ALL_QUEUES {
            (
                "Every queue is paused".to_owned(),
                "no document moves on, and uploads wait, until they are resumed",
                "Resume every queue".to_owned(),
            )
        } else {
            (
                format!("Queue <strong>{}</strong> is paused", esc(&q.name)),
                "its jobs wait, so documents whose stages run in it (uploads too) do not move on until it is resumed",
                format!("Resume queue {}", q.name),
            )
        };
        let _ = write!(
            b,
            "<div class=\"notice\" role=\"status\" data-paused-queue=\"{n}\"><p>{what} (since {since}): {consequence}.</p><form method=\"post\" action=\"/ui/queues/{u}/resume\"><input type=\"hidden\" name=\"back\" value=\"/ui/documents\"><button type=\"submit\" class=\"secondary\" aria-label=\"{l}\">Resume</button></form> <a href=\"/ui/queues\">Queues</a></div>",
            n = esc(&q.name),
            u = html::url(&q.name),
            l = esc(&label),
        );
    }
    b.push_str("</div>");
    b
}

/// Chunks on a page of a document's page.
pub(super) const CHUNKS_PAGE: i64 = 20;

#[derive(Debug, Default, Deserialize)]
pub(super) struct DocQuery {
    /// The page of chunks, from 1; kept as text so that a bad one gets a clear answer.
    page: Option<String>,
}

/// Which page of a document's chunks is shown, and the links to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pager {
    document: Uuid,
    /// From 1.
    page: i64,
    /// At least 1 (an empty document has one, empty, page).
    pages: i64,
    /// Chunks in all.
    total: i64,
}

impl Pager {
    /// Page `raw` (1 when absent or blank) of `total` chunks; `422` for one that is not a
    /// whole number from 1, `404` for one past the last page, each saying which pages exist.
    fn new(document: Uuid, raw: Option<&str>, total: i64) -> Result<Self, UiError> {
        let pages = ((total + CHUNKS_PAGE - 1) / CHUNKS_PAGE).max(1);
        let page = match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => 1,
            Some(r) => match r.parse::<i64>() {
                Ok(p) if p >= 1 => p,
                _ => {
                    return Err(UiError(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!(
                            "page must be a whole number from 1 to {pages}, not {:?}",
                            html::truncate(r, 40)
                        ),
                    ));
                }
            },
        };
        if page > pages {
            return Err(UiError(
                StatusCode::NOT_FOUND,
                format!(
                    "page {page} is past the last page: this document's {} fill {} of {CHUNKS_PAGE}",
                    html::count(usize::try_from(total).unwrap_or(0), "chunk", "chunks"),
                    html::count(usize::try_from(pages).unwrap_or(1), "page", "pages"),
                ),
            ));
        }
        Ok(Self {
            document,
            page,
            pages,
            total,
        })
    }

    /// Chunks before this page.
    fn offset(&self) -> i64 {
        (self.page - 1) * CHUNKS_PAGE
    }

    /// "Chunks 21–40 of 168 · page 2 of 9", for `shown` chunks on this page.
    fn summary(&self, shown: usize) -> String {
        let first = self.offset() + 1;
        let last = self.offset() + shown as i64;
        format!(
            "<p class=\"pager-summary\" id=\"chunk-range\">Chunks {first}–{last} of {} · page {} of {}</p>",
            self.total, self.page, self.pages
        )
    }

    fn href(&self, page: i64) -> String {
        format!("/ui/documents/{}?page={page}#chunks", self.document)
    }

    /// First, previous, next and last, and a box to jump to a page; nothing when one page
    /// holds them all.
    fn nav(&self) -> String {
        if self.pages <= 1 {
            return String::new();
        }
        let mut b = String::from("<nav class=\"pager\" aria-label=\"Chunk pages\">");
        let link = |b: &mut String, enabled: bool, page: i64, rel: &str, text: &str| {
            if enabled {
                let _ = write!(
                    b,
                    "<a href=\"{}\" rel=\"{rel}\">{text}</a>",
                    self.href(page)
                );
            } else {
                let _ = write!(
                    b,
                    "<span class=\"muted\" aria-disabled=\"true\">{text}</span>"
                );
            }
        };
        link(&mut b, self.page > 1, 1, "first", "« First page");
        link(
            &mut b,
            self.page > 1,
            self.page - 1,
            "prev",
            "‹ Previous page",
        );
        let _ = write!(
            b,
            "<span class=\"where\">Page {} of {}</span>",
            self.page, self.pages
        );
        link(
            &mut b,
            self.page < self.pages,
            self.page + 1,
            "next",
            "Next page ›",
        );
        link(
            &mut b,
            self.page < self.pages,
            self.pages,
            "last",
            "Last page »",
        );
        let _ = write!(
            b,
            "<form method=\"get\" action=\"/ui/documents/{}#chunks\" class=\"goto\"><label for=\"chunk-page\">Go to page</label><input id=\"chunk-page\" name=\"page\" type=\"number\" min=\"1\" max=\"{}\" value=\"{}\" inputmode=\"numeric\"><button type=\"submit\" class=\"secondary\">Go</button></form></nav>",
            self.document, self.pages, self.page
        );
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_chunks() {
        let id = Uuid::nil();
        let p = Pager::new(id, None, 168).unwrap();
        assert_eq!((p.page, p.pages, p.offset()), (1, 9, 0));
        let p = Pager::new(id, Some(" 9 "), 168).unwrap();
        assert_eq!((p.page, p.offset()), (9, 160));
        assert!(p.summary(8).contains("Chunks 161–168 of 168 · page 9 of 9"));
        assert!(p.nav().contains("rel=\"prev\""));
        assert!(!p.nav().contains("rel=\"next\""));
        assert_eq!(Pager::new(id, Some(""), 0).unwrap().pages, 1);
        assert_eq!(Pager::new(id, None, 20).unwrap().pages, 1);
        assert_eq!(Pager::new(id, None, 21).unwrap().pages, 2);
        assert_eq!(Pager::new(id, None, 20).unwrap().nav(), "");
        for bad in ["0", "-1", "two", "1.5", "99999999999999999999"] {
            let UiError(status, msg) = Pager::new(id, Some(bad), 168).unwrap_err();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert!(msg.contains("from 1 to 9"), "{msg}");
        }
        let UiError(status, msg) = Pager::new(id, Some("10"), 168).unwrap_err();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            msg,
            "page 10 is past the last page: this document's 168 chunks fill 9 pages of 20"
        );
    }
}
