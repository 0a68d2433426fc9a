//! The overview's search-index card: the running embedder (and a banner while the lexical
//! `hashing` embedder stands in for the default local model, not downloaded), the documents
//! search cannot rank because another embedder made their vectors (and why), and the button
//! that re-embeds them (the same durable job as `POST /v1/reindex` and `docket reindex`), once
//! confirmed.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use docket_core::Driver;
use docket_pipeline::Pipeline;
use docket_pipeline::alerts::Rule;
use docket_pipeline::alerts::ops;
use docket_pipeline::reindex::REINDEX_KEY;

use super::confirm::{self, Ask};
use super::flash::{self, Flash};
use super::html::{count, esc};
use super::{Ui, UiResult, actions};
use crate::AppState;
use crate::auth::Actor;

/// While the `embed_provider_failing` rule holds (pending or firing): since when, why, and how
/// many jobs wait for the provider.
async fn provider_state<D: Driver>(p: &Pipeline<D>) -> String {
    let open = docket_core::AlertListParams {
        open: Some(true),
        rule: Some(Rule::EmbedProviderFailing.name().to_owned()),
        limit: 10,
        ..Default::default()
    };
    let Ok(view) = ops::list(p.driver(), &open).await else {
        return String::new();
    };
    let mut b = String::new();
    for a in &view.alerts {
        let x = &a.alert;
        let since = x.firing_at.unwrap_or(x.pending_at);
        let waiting = x.figures["waiting"].as_i64().unwrap_or(0);
        let provider = x.figures["provider"]
            .as_str()
            .unwrap_or("the embedding provider");
        let _ = write!(
            b,
            "<p class=\"warn\" role=\"status\" id=\"provider-failing\"><strong>Embedding provider <code>{}</code> failing since {}</strong> ({}), {} waiting for it. <a href=\"/ui/alerts\">Alerts</a></p>",
            esc(provider),
            since.format("%H:%M UTC"),
            esc(&x.summary),
            count(waiting.max(0) as usize, "job", "jobs"),
        );
    }
    b
}

/// The card, or a line saying why it cannot be shown.
pub(super) async fn card<D: Driver>(p: &Pipeline<D>) -> String {
    let mut b =
        String::from("<section class=\"card\" id=\"search-index\" data-live><h2>Search index</h2>");
    // `hashing` standing in for the default local model, which is not downloaded: say so
    // first, with the command that fixes it.
    if let Some(note) = p.embedder().fallback() {
        let _ = write!(
            b,
            "<p class=\"warn\" role=\"alert\" id=\"embedder-fallback\"><strong>Semantic search is off.</strong> {}</p>",
            esc(note)
        );
    }
    b.push_str(&provider_state(p).await);
    match p.embedder_report_cached().await {
        Err(e) => {
            let _ = write!(
                b,
                "<p class=\"warn\">Cannot count documents by embedder: {}</p>",
                esc(&e.to_string())
            );
        }
        Ok(r) => {
            let _ = write!(
                b,
                "<p>Embedder <code>{}</code> <small>({})</small>: <strong id=\"current-documents\">{}</strong> searchable documents.</p>",
                esc(&r.name),
                esc(&r.fingerprint),
                r.current_documents
            );
            if r.stale_documents > 0 {
                let _ = write!(
                    b,
                    "<p class=\"warn\" role=\"status\" id=\"stale-documents\"><strong>{}</strong> documents are not searched: another embedder made their vectors ({} being processed again).</p><ul>",
                    r.stale_documents, r.reembedding_documents
                );
                for s in &r.stale {
                    let _ = write!(b, "<li>{}: {}</li>", s.documents, esc(&s.reason));
                }
                let waiting = r.stale_documents - r.reembedding_documents;
                let _ = write!(
                    b,
                    "</ul><form method=\"post\" action=\"/ui/reindex\"><button type=\"submit\" id=\"reindex\">Re-embed {waiting} documents</button></form>"
                );
            }
        }
    }
    b.push_str("</section>");
    b
}

/// `POST /ui/reindex`: once confirmed (`confirm=yes`; without it, the confirmation page),
/// starts re-embedding (one job at a time) and goes back to the overview.
pub(super) async fn reindex<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
    ui: Ui,
    body: axum::body::Bytes,
) -> UiResult {
    let p = &s.pipeline;
    if !confirm::given(&body) {
        let r = p.embedder_report_cached().await?;
        let waiting = usize::try_from(r.stale_documents - r.reembedding_documents).unwrap_or(0);
        if waiting == 0 {
            return Ok(flash::redirect(
                "/",
                Flash::done(
                    "Nothing to re-embed: every document's vectors are the running embedder's, or are being made again.",
                ),
            ));
        }
        let docs = count(waiting, "document", "documents");
        return Ok(Ask {
            title: format!("Re-embed {docs}?"),
            detail: format!(
                "Their chunks are embedded again with <code>{}</code>, one document at a time; uploads keep priority. Search finds them again as each completes.",
                esc(&r.name)
            ),
            action: "/ui/reindex".into(),
            fields: Vec::new(),
            button: format!("Re-embed {docs}"),
            danger: false,
            back: "/".into(),
            nav: "overview",
        }
        .page(&ui));
    }
    let started = p.start_reindex().await?;
    let msg = if started.created {
        docket_queue::admin::record(
            p.driver(),
            &actions::who(&actor),
            "reindex",
            Some(REINDEX_KEY.to_owned()),
            &[started.job_id],
            serde_json::json!({ "stale_documents": started.stale_documents }),
        )
        .await?;
        Flash::done(format!(
            "Re-embedding {}: job {} queued.",
            count(
                usize::try_from(started.stale_documents).unwrap_or(0),
                "document",
                "documents"
            ),
            started.job_id
        ))
    } else {
        Flash::warn(format!(
            "Re-embedding is already under way (job {}): nothing new queued.",
            started.job_id
        ))
    };
    Ok(flash::redirect("/", msg))
}
