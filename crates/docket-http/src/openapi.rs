//! The OpenAPI 3.1 description of the API, served at `GET /v1/openapi.json`.
//!
//! The document is written by hand (`openapi.json` at the crate's root), next to the handlers
//! it describes; the crate's `openapi` test checks it against the router's routes, the
//! server's answers and an OpenAPI validator, and its `openapi_cases` test sends the server
//! requests built from the document's own schemas, valid and invalid, and checks that it
//! accepts and refuses them as the document says.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /v1/openapi.json`: the document, as `application/json`.
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
