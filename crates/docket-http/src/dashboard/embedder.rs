//! The overview's search-index card: the running embedder (and a banner while the lexical
//! `hashing` embedder stands in for the default local model, not downloaded), the documents
//! search cannot rank because another embedder made their vectors (and why), and the button
//! that re-embeds them (the same durable job as `POST /v1/reindex` and `docket reindex`).

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use docket_core::Driver;
use docket_pipeline::Pipeline;
use docket_pipeline::reindex::REINDEX_KEY;

use super::html::esc;
use super::{UiResult, actions, see_other};
use crate::AppState;
use crate::auth::Actor;

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
                    "</ul><form method=\"post\" action=\"/ui/reindex\" data-confirm=\"Re-embed {waiting} documents with {}? Uploads keep priority.\"><button type=\"submit\" id=\"reindex\">Re-embed {waiting} documents</button></form>",
                    esc(&r.name)
                );
            }
        }
    }
    b.push_str("</section>");
    b
}

/// `POST /ui/reindex`: starts re-embedding (one job at a time) and goes back to the overview.
pub(super) async fn reindex<D: Driver>(
    State(s): State<AppState<D>>,
    actor: Option<Extension<Actor>>,
) -> UiResult {
    let p = &s.pipeline;
    let started = p.start_reindex().await?;
    if started.created {
        docket_queue::admin::record(
            p.driver(),
            &actions::who(&actor),
            "reindex",
            Some(REINDEX_KEY.to_owned()),
            &[started.job_id],
            serde_json::json!({ "stale_documents": started.stale_documents }),
        )
        .await?;
    }
    Ok(see_other("/"))
}
