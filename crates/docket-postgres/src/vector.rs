//! The optional pgvector path: detection, the `vector` text of a chunk vector, and the
//! statements that name the extension's schema.
//!
//! The statements qualify pgvector's type, functions, operator and operator class with the
//! schema the extension was installed in, so they work whatever the connection's
//! `search_path` (a schema per tenant or per test need not list the extension's).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use docket_core::{Result, decode_vector};
use sqlx::{Connection, PgConnection};

use crate::exec::map_err;

/// pgvector's largest `vector`.
pub(crate) const MAX_DIMS: usize = 16_000;

/// pgvector's largest `vector` an HNSW index holds.
pub(crate) const MAX_INDEX_DIMS: i32 = 2_000;

/// Candidates taken from the HNSW index per hit asked for, before the filters (active
/// generation, embedder) keep the best k; and at least this many.
pub(crate) const OVERSAMPLE: i64 = 4;
pub(crate) const MIN_CANDIDATES: i64 = 40;

/// `hnsw.ef_search` for a search (pgvector's default is 40): the breadth of the graph walk,
/// as docket's own index uses it (measured with `docket bench search`).
pub(crate) const EF_SEARCH: i64 = 256;

/// The widest `hnsw.ef_search` pgvector accepts; past it the exact statement answers.
pub(crate) const MAX_EF_SEARCH: i64 = 1_000;

/// What a driver (and every executor it hands out) knows about pgvector: nothing until
/// detected, then the extension's schema prefix (`"public".`) where the vector path is usable,
/// or `None` where it is not.
#[derive(Debug, Default)]
pub(crate) struct VectorSupport(Mutex<Option<Option<Arc<str>>>>);

impl VectorSupport {
    /// The detected state; `None` until detected.
    pub(crate) fn get(&self) -> Option<Option<Arc<str>>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a detection.
    pub(crate) fn set(&self, ext: Option<Arc<str>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(ext);
    }
}

/// Vectors per statement of the backfill.
const BACKFILL_PAGE: i64 = 500;

/// `(extension schema, whether document_chunks.embedding_vec exists)`.
async fn probe(conn: &mut PgConnection) -> Result<(Option<String>, bool)> {
    sqlx::query_as(include_str!("../queries/vector_detect.sql"))
        .fetch_one(conn)
        .await
        .map_err(map_err)
}

/// Detects pgvector on `conn`: the extension's schema prefix when it is installed and
/// `document_chunks.embedding_vec` exists. With `add_column` (from `migrate`), a missing column
/// is added and filled from the vectors already stored, in one transaction; without it, an
/// installed extension without the column is reported unusable (the schema was migrated
/// before the extension was installed: migrating again adds it).
pub(crate) async fn detect(conn: &mut PgConnection, add_column: bool) -> Result<Option<Arc<str>>> {
    let (schema, has_column) = probe(conn).await?;
    let Some(schema) = schema else {
        return Ok(None);
    };
    let ext = schema_prefix(&schema);
    if !has_column {
        if !add_column {
            tracing::warn!(
                "pgvector is installed but document_chunks.embedding_vec is missing; \
                 vector search stays off until the schema is migrated again"
            );
            return Ok(None);
        }
        add_and_fill_column(conn, &ext).await?;
    }
    Ok(Some(ext.into()))
}

/// Adds `embedding_vec` and fills it from the stored vectors, all or nothing, so that search
/// never sees a half-filled column. Chunk reads and writes wait meanwhile (once, when the
/// extension is first found); a process migrating at the same time waits, then finds the
/// column.
async fn add_and_fill_column(conn: &mut PgConnection, ext: &str) -> Result<()> {
    let mut tx = conn.begin().await.map_err(map_err)?;
    sqlx::query("LOCK TABLE document_chunks IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if probe(&mut tx).await?.1 {
        return tx.commit().await.map_err(map_err);
    }
    sqlx::query(&render(
        include_str!("../queries/vector_add_column.sql"),
        ext,
        None,
    ))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let set = render(
        include_str!("../queries/vector_backfill_set.sql"),
        ext,
        None,
    );
    let mut after = 0i64;
    let mut filled = 0u64;
    loop {
        let page: Vec<(i64, Vec<u8>)> =
            sqlx::query_as(include_str!("../queries/vector_backfill_page.sql"))
                .bind(after)
                .bind(BACKFILL_PAGE)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.0;
        let mut ids = Vec::with_capacity(page.len());
        let mut texts = Vec::with_capacity(page.len());
        for (id, bytes) in &page {
            ids.push(*id);
            texts.push(vector_text(&decode_vector(bytes)?));
        }
        filled += sqlx::query(&set)
            .bind(&ids)
            .bind(&texts)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
    }
    tx.commit().await.map_err(map_err)?;
    tracing::info!(filled, "pgvector: added document_chunks.embedding_vec");
    Ok(())
}

/// `schema` as a quoted identifier followed by a dot: the prefix of a qualified name.
fn schema_prefix(schema: &str) -> String {
    format!("\"{}\".", schema.replace('"', "\"\""))
}

/// A statement template with `{ext}` (the extension's schema prefix) and `{dims}` filled in.
/// `dims` is an integer the caller checked, never text from outside.
pub(crate) fn render(template: &str, ext: &str, dims: Option<i32>) -> String {
    let sql = template.replace("{ext}", ext);
    match dims {
        Some(d) => sql.replace("{dims}", &d.to_string()),
        None => sql,
    }
}

/// The name of the index over vectors of `dims` dimensions (see `vector_index_create.sql`).
pub(crate) fn index_name(dims: i32) -> String {
    format!("document_chunks_embedding_hnsw_{dims}")
}

/// A vector as pgvector's text input reads it, `[0.1,-2.5e-7]`: each component in the
/// shortest form that reads back as the same `f32`. `None` for a vector pgvector cannot hold
/// (no component, more than [`MAX_DIMS`], NaN or infinite components); such a chunk keeps only
/// its portable bytes and is left out of `chunk_search`.
pub(crate) fn vector_text(v: &[f32]) -> Option<String> {
    if v.is_empty() || v.len() > MAX_DIMS || !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Debug, unlike Display, switches to exponents for very small and large magnitudes;
        // both print the shortest digits that round-trip.
        let _ = write!(s, "{x:?}");
    }
    s.push(']');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a `[a,b,…]` text back the way pgvector does, component by component.
    fn parse(s: &str) -> Vec<f32> {
        s.strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .expect("brackets")
            .split(',')
            .map(|x| x.parse::<f32>().unwrap_or_else(|e| panic!("{x:?}: {e}")))
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn vector_text_is_short_and_reads_back_bit_for_bit() {
        assert_eq!(vector_text(&[0.1, 0.2]).as_deref(), Some("[0.1,0.2]"));
        assert_eq!(vector_text(&[1.0, -3.0]).as_deref(), Some("[1.0,-3.0]"));
        assert_eq!(vector_text(&[1e-7]).as_deref(), Some("[1e-7]"));

        let mut v = vec![
            0.0f32,
            -0.0,
            1.0 / 3.0,
            0.1,
            -123_456.79,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            16_777_217.0,
        ];
        // A spread of bit patterns over the finite range.
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let f = f32::from_bits(x);
            if f.is_finite() {
                v.push(f);
            }
        }
        let text = vector_text(&v).expect("finite");
        assert!(!text.contains(' '));
        assert_eq!(bits(&parse(&text)), bits(&v));
    }

    #[test]
    fn vectors_pgvector_cannot_hold_have_no_text() {
        assert_eq!(vector_text(&[]), None);
        assert_eq!(vector_text(&[1.0, f32::NAN]), None);
        assert_eq!(vector_text(&[f32::INFINITY]), None);
        assert_eq!(vector_text(&[f32::NEG_INFINITY, 0.0]), None);
        assert_eq!(vector_text(&vec![0.5; MAX_DIMS + 1]), None);
        assert!(vector_text(&vec![0.5; MAX_DIMS]).is_some());
    }

    #[test]
    fn templates_are_filled() {
        let ext = schema_prefix("my \"ext\"");
        assert_eq!(ext, "\"my \"\"ext\"\"\".");
        for (sql, dims) in [
            (include_str!("../queries/vector_add_column.sql"), None),
            (
                include_str!("../queries/chunk_set_embeddings_vector.sql"),
                None,
            ),
            (include_str!("../queries/vector_backfill_set.sql"), None),
            (
                include_str!("../queries/vector_index_create.sql"),
                Some(384),
            ),
            (include_str!("../queries/chunk_search.sql"), Some(384)),
            (include_str!("../queries/chunk_search_exact.sql"), Some(384)),
        ] {
            let out = render(sql, &ext, dims);
            assert!(!out.contains("{ext}") && !out.contains("{dims}"), "{out}");
            assert!(out.contains("\"my \"\"ext\"\"\".vector"), "{out}");
        }
        let idx = render(
            include_str!("../queries/vector_index_create.sql"),
            "\"public\".",
            Some(3),
        );
        assert!(idx.contains(&index_name(3)), "{idx}");
        assert!(
            idx.contains("(embedding_vec::\"public\".vector(3))"),
            "{idx}"
        );
        assert!(idx.contains("\"public\".vector_cosine_ops"), "{idx}");
        let search = render(
            include_str!("../queries/chunk_search.sql"),
            "\"public\".",
            Some(3),
        );
        // The index's expression and predicate, as the search spells them.
        assert!(
            search.contains(
                "ORDER BY c.embedding_vec::\"public\".vector(3) OPERATOR(\"public\".<=>)"
            ),
            "{search}"
        );
        assert!(
            search.contains("\"public\".vector_dims(c.embedding_vec) = 3"),
            "{search}"
        );
    }
}
