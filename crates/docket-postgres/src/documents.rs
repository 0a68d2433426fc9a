//! The [`DocumentStore`] half of the executor: documents, texts, chunks and vectors.

use std::ops::DerefMut;

use docket_core::*;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::exec::{PgExec, map_err};
use crate::rows;
use crate::vector;

impl<C> DocumentStore for PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    async fn document_insert(&mut self, p: &DocumentInsertParams) -> Result<DocumentRow> {
        p.validate()?;
        let row = sqlx::query(include_str!("../queries/document_insert.sql"))
            .bind(p.id)
            .bind(p.source.as_str())
            .bind(&p.filename)
            .bind(&p.content_type)
            .bind(p.size_bytes)
            .bind(&p.sha256)
            .bind(&p.storage_key)
            .bind(&p.callback_url)
            .bind(&p.metadata)
            .bind(p.priority)
            .bind(p.now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => rows::document(&row),
            None => self
                .document_find_by_sha256(&p.sha256)
                .await?
                .ok_or_else(|| {
                    Error::Invalid("document with this sha256 vanished during insert".into())
                }),
        }
    }

    async fn document_get(&mut self, id: Uuid) -> Result<Option<DocumentRow>> {
        sqlx::query("SELECT * FROM documents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::document)
            .transpose()
    }

    async fn document_find_by_sha256(&mut self, sha256: &str) -> Result<Option<DocumentRow>> {
        sqlx::query(include_str!("../queries/document_find_by_sha256.sql"))
            .bind(sha256)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::document)
            .transpose()
    }

    async fn document_list(&mut self, p: &DocumentListParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        sqlx::query(include_str!("../queries/document_list.sql"))
            .bind(p.status.map(DocumentStatus::as_str))
            .bind(p.source.map(DocumentSource::as_str))
            .bind(p.before)
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::document)
            .collect()
    }

    async fn document_set_stage(&mut self, p: &DocumentStageParams) -> Result<bool> {
        p.validate()?;
        let (key, ms) = split_timing(&p.timing);
        sqlx::query(include_str!("../queries/document_set_stage.sql"))
            .bind(p.id)
            .bind(p.generation)
            .bind(p.status.as_str())
            .bind(&p.stage)
            .bind(p.progress)
            .bind(key)
            .bind(ms)
            .bind(p.now)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map_err)
    }

    async fn document_set_progress(&mut self, p: &DocumentProgressParams) -> Result<bool> {
        p.validate()?;
        sqlx::query(include_str!("../queries/document_set_progress.sql"))
            .bind(p.id)
            .bind(p.generation)
            .bind(p.progress)
            .bind(p.now)
            .bind(&p.generation_embedder)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map_err)
    }

    async fn document_fail(&mut self, p: &DocumentFailParams) -> Result<bool> {
        sqlx::query(include_str!("../queries/document_fail.sql"))
            .bind(p.id)
            .bind(p.generation)
            .bind(&p.stage)
            .bind(&p.error)
            .bind(p.now)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(map_err)
    }

    async fn document_cancel(&mut self, p: &DocumentCancelParams) -> Result<Vec<Uuid>> {
        let mut ids: Vec<Uuid> = sqlx::query_scalar(include_str!("../queries/document_cancel.sql"))
            .bind(&p.ids)
            .bind(&p.reason)
            .bind(p.now)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn document_activate(&mut self, p: &DocumentActivateParams) -> Result<bool> {
        p.validate()?;
        let (key, ms) = split_timing(&p.timing);
        let row: Option<Uuid> =
            sqlx::query_scalar(include_str!("../queries/document_activate.sql"))
                .bind(p.id)
                .bind(p.generation)
                .bind(p.chunk_count)
                .bind(p.token_count)
                .bind(&p.embedder)
                .bind(key)
                .bind(ms)
                .bind(p.status.as_str())
                .bind(p.progress)
                .bind(p.now)
                .bind(&p.embedder_fingerprint)
                .bind(&p.chunker_fingerprint)
                .fetch_optional(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn document_reprocess(
        &mut self,
        p: &DocumentReprocessParams,
    ) -> Result<Option<DocumentRow>> {
        sqlx::query(include_str!("../queries/document_reprocess.sql"))
            .bind(p.id)
            .bind(p.now)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::document)
            .transpose()
    }

    async fn document_embedders(&mut self) -> Result<Vec<EmbedderCount>> {
        let rows: Vec<(Option<String>, Option<String>, bool, i64)> =
            sqlx::query_as(include_str!("../queries/document_embedders.sql"))
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(
                |(embedder, embedder_fingerprint, finished, documents)| EmbedderCount {
                    embedder,
                    embedder_fingerprint,
                    finished,
                    documents,
                },
            )
            .collect())
    }

    async fn document_embedder_adopt(&mut self, p: &EmbedderAdoptParams) -> Result<u64> {
        let adopted: i64 =
            sqlx::query_scalar(include_str!("../queries/document_embedder_adopt.sql"))
                .bind(&p.embedder)
                .bind(&p.embedder_fingerprint)
                .fetch_one(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(adopted as u64)
    }

    async fn document_reembed(&mut self, p: &DocumentReembedParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        sqlx::query(include_str!("../queries/document_reembed.sql"))
            .bind(&p.embedder_fingerprint)
            .bind(&p.chunker_fingerprint)
            .bind(p.limit)
            .bind(p.now)
            .bind(p.after)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::document)
            .collect()
    }

    async fn document_delete(&mut self, id: Uuid) -> Result<bool> {
        let deleted: i64 = sqlx::query_scalar(include_str!("../queries/document_delete.sql"))
            .bind(id)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(deleted > 0)
    }

    async fn document_ids_present(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        check_ids_present(ids)?;
        sqlx::query_scalar("SELECT id FROM documents WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn search_index_changes(
        &mut self,
        p: &SearchIndexChangesParams,
    ) -> Result<Vec<SearchIndexChange>> {
        p.validate()?;
        let rows: Vec<(i64, Uuid, bool, Option<String>, i64)> =
            sqlx::query_as(include_str!("../queries/search_index_changes.sql"))
                .bind(p.after_seq)
                .bind(p.after_document)
                .bind(p.limit)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(
                |(seq, document_id, searchable, embedder_fingerprint, chunk_count)| {
                    SearchIndexChange {
                        seq,
                        document_id,
                        searchable,
                        embedder_fingerprint,
                        chunk_count,
                    }
                },
            )
            .collect())
    }

    async fn document_list_stuck(&mut self, p: &StuckDocumentsParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        sqlx::query(include_str!("../queries/document_list_stuck.sql"))
            .bind(p.updated_before)
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::document)
            .collect()
    }

    async fn document_text_upsert(&mut self, t: &DocumentText) -> Result<()> {
        validate_document_text(t)?;
        sqlx::query(include_str!("../queries/document_text_upsert.sql"))
            .bind(t.document_id)
            .bind(t.generation)
            .bind(&t.format)
            .bind(&t.text)
            .bind(&t.sections)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn document_text_get(&mut self, key: GenerationKey) -> Result<Option<DocumentText>> {
        sqlx::query("SELECT * FROM document_texts WHERE document_id = $1 AND generation = $2")
            .bind(key.document_id)
            .bind(key.generation)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::text)
            .transpose()
    }

    async fn chunk_replace(&mut self, params: ChunkReplaceParams<'_>) -> Result<u64> {
        validate_chunks(params.chunks)?;
        let n = params.chunks.len();
        let mut index = Vec::with_capacity(n);
        let mut text = Vec::with_capacity(n);
        let mut start = Vec::with_capacity(n);
        let mut end = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        let mut headings = Vec::with_capacity(n);
        let mut page = Vec::with_capacity(n);
        for c in params.chunks {
            index.push(c.chunk_index);
            text.push(c.text.as_str());
            start.push(c.char_start);
            end.push(c.char_end);
            tokens.push(c.token_count);
            headings.push(serde_json::to_value(&c.heading_path)?);
            page.push(c.page);
        }
        // A savepoint inside the caller's transaction, else a transaction of its own: the
        // old params.chunks go only if the new ones arrive.
        let mut tx = self.conn.deref_mut().begin().await.map_err(map_err)?;
        sqlx::query(include_str!("../queries/chunk_delete_generation.sql"))
            .bind(params.document_id)
            .bind(params.generation)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let inserted = if n == 0 {
            0
        } else {
            sqlx::query(include_str!("../queries/chunk_replace.sql"))
                .bind(params.document_id)
                .bind(params.generation)
                .bind(&index)
                .bind(&text)
                .bind(&start)
                .bind(&end)
                .bind(&tokens)
                .bind(&headings)
                .bind(&page)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected()
        };
        tx.commit().await.map_err(map_err)?;
        Ok(inserted)
    }

    async fn chunk_list(&mut self, params: ChunkListParams) -> Result<Vec<ChunkRow>> {
        check_window(params.limit, params.offset)?;
        sqlx::query(include_str!("../queries/chunk_list.sql"))
            .bind(params.document_id)
            .bind(params.generation)
            .bind(params.limit)
            .bind(params.offset)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::chunk)
            .collect()
    }

    async fn chunk_list_unembedded(
        &mut self,
        params: ChunkListUnembeddedParams,
    ) -> Result<Vec<ChunkRow>> {
        check_window(params.limit, 0)?;
        sqlx::query(include_str!("../queries/chunk_list_unembedded.sql"))
            .bind(params.document_id)
            .bind(params.generation)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::chunk)
            .collect()
    }

    async fn chunk_set_embeddings(&mut self, embeddings: &[(i64, Vec<f32>)]) -> Result<u64> {
        if embeddings.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = embeddings.iter().map(|(id, _)| *id).collect();
        let vectors: Vec<Vec<u8>> = embeddings.iter().map(|(_, v)| encode_vector(v)).collect();
        let Some(ext) = self.pgvector().await? else {
            return sqlx::query(include_str!("../queries/chunk_set_embeddings.sql"))
                .bind(&ids)
                .bind(&vectors)
                .execute(&mut *self.conn)
                .await
                .map(|r| r.rows_affected())
                .map_err(map_err);
        };
        let texts: Vec<Option<String>> = embeddings
            .iter()
            .map(|(_, v)| vector::vector_text(v))
            .collect();
        let sql = vector::render(
            include_str!("../queries/chunk_set_embeddings_vector.sql"),
            &ext,
            None,
        );
        sqlx::query(&sql)
            .bind(&ids)
            .bind(&vectors)
            .bind(&texts)
            .execute(&mut *self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(map_err)
    }

    async fn chunk_count_embedded(&mut self, key: GenerationKey) -> Result<(i64, i64)> {
        sqlx::query_as(include_str!("../queries/chunk_count_embedded.sql"))
            .bind(key.document_id)
            .bind(key.generation)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn chunk_vectors_page(&mut self, p: &ChunkVectorPageParams) -> Result<Vec<ChunkVector>> {
        p.validate()?;
        let query = match &p.chunk_ids {
            Some(ids) => sqlx::query(include_str!("../queries/chunk_vectors_by_id.sql"))
                .bind(&p.document_ids)
                .bind(p.after_id)
                .bind(p.limit)
                .bind(&p.embedder_fingerprint)
                .bind(ids),
            None if p.document_ids.as_ref().is_some_and(|d| d.len() <= 256) => {
                sqlx::query(include_str!("../queries/chunk_vectors_of_documents.sql"))
                    .bind(&p.document_ids)
                    .bind(p.after_id)
                    .bind(p.limit)
                    .bind(&p.embedder_fingerprint)
            }
            None => return self.chunk_vectors_walk(p).await,
        };
        query
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::vector)
            .collect()
    }

    async fn chunk_get_many(&mut self, ids: &[i64]) -> Result<Vec<ChunkRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query(include_str!("../queries/chunk_get_many.sql"))
            .bind(ids)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?
            .iter()
            .map(rows::chunk)
            .collect()
    }

    async fn document_filter(&mut self, p: &DocumentFilterParams) -> Result<Vec<Uuid>> {
        p.validate()?;
        sqlx::query_scalar(include_str!("../queries/document_filter.sql"))
            .bind(&p.filename_contains)
            .bind(&p.metadata)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn chunk_text_search(&mut self, p: &ChunkTextSearchParams) -> Result<Vec<ChunkScore>> {
        p.validate()?;
        let terms = text_terms(&p.query);
        if terms.is_empty() || p.k == 0 || p.document_ids.as_ref().is_some_and(|d| d.is_empty()) {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, Uuid, f64)> =
            sqlx::query_as(include_str!("../queries/chunk_text_search.sql"))
                .bind(terms.join(" | "))
                .bind(&p.document_ids)
                .bind(p.k)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, document_id, score)| ChunkScore {
                id,
                document_id,
                score: score as f32,
            })
            .collect())
    }

    async fn vector_search_available(&mut self) -> Result<bool> {
        Ok(self.pgvector().await?.is_some())
    }

    async fn vector_index_ensure(&mut self, dims: i32) -> Result<bool> {
        validate_vector_index_dims(dims)?;
        let Some(ext) = self.pgvector().await? else {
            return Ok(false);
        };
        if dims > vector::MAX_INDEX_DIMS {
            return Ok(false);
        }
        // CREATE INDEX locks the table against writes even when the index exists: look first.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(vector::index_name(dims))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        if !exists {
            let sql = vector::render(
                include_str!("../queries/vector_index_create.sql"),
                &ext,
                Some(dims),
            );
            sqlx::query(&sql)
                .execute(&mut *self.conn)
                .await
                .map_err(map_err)?;
        }
        Ok(true)
    }

    async fn chunk_search(&mut self, p: &ChunkSearchParams) -> Result<Option<Vec<ChunkScore>>> {
        p.validate()?;
        let Some(ext) = self.pgvector().await? else {
            return Ok(None);
        };
        let Some(query) = vector::vector_text(&p.query) else {
            // Longer than any pgvector vector: no stored `vector` has its dimensions.
            return Ok(None);
        };
        if p.k == 0 || p.document_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
            return Ok(Some(Vec::new()));
        }
        let dims = i32::try_from(p.query.len()).expect("at most MAX_DIMS");
        // A transaction (a savepoint inside the caller's) bounds `hnsw.ef_search`.
        let mut tx = self.conn.deref_mut().begin().await.map_err(map_err)?;
        let mut rows: Vec<(i64, Uuid, f64)> = Vec::new();
        if p.document_ids.is_none() {
            // The index's nearest candidates, filtered; widened while the filters (older
            // generations, another embedder's vectors) leave fewer than k.
            let sql = vector::render(
                include_str!("../queries/chunk_search.sql"),
                &ext,
                Some(dims),
            );
            let mut want =
                p.k.saturating_mul(vector::OVERSAMPLE)
                    .clamp(vector::MIN_CANDIDATES, vector::MAX_EF_SEARCH);
            loop {
                // An HNSW scan yields at most `hnsw.ef_search` rows.
                let ef_search = want.max(vector::EF_SEARCH).to_string();
                sqlx::query("SELECT set_config('hnsw.ef_search', $1, true)")
                    .bind(&ef_search)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                rows = sqlx::query_as(&sql)
                    .bind(&query)
                    .bind(p.k)
                    .bind(&p.embedder_fingerprint)
                    .bind(want)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if rows.len() as i64 >= p.k || want >= vector::MAX_EF_SEARCH {
                    break;
                }
                want = (want * vector::OVERSAMPLE).min(vector::MAX_EF_SEARCH);
            }
        }
        if (rows.len() as i64) < p.k {
            // A scope, or fewer than k left after the widest candidates: every vector, exactly.
            let sql = vector::render(
                include_str!("../queries/chunk_search_exact.sql"),
                &ext,
                Some(dims),
            );
            rows = sqlx::query_as(&sql)
                .bind(&query)
                .bind(&p.document_ids)
                .bind(p.k)
                .bind(&p.embedder_fingerprint)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Some(
            rows.into_iter()
                .map(|(id, document_id, distance)| ChunkScore {
                    id,
                    document_id,
                    score: (1.0 - distance) as f32,
                })
                .collect(),
        ))
    }
}

impl<C> PgExec<C>
where
    C: DerefMut<Target = PgConnection> + Send,
{
    /// `chunk_vectors_page` over every document or many: pages of the primary key, each
    /// checked against the documents' active generations (`chunk_vectors_page.sql`), read on
    /// until `limit` live chunks are found or the chunks run out.
    async fn chunk_vectors_walk(&mut self, p: &ChunkVectorPageParams) -> Result<Vec<ChunkVector>> {
        use sqlx::Row;
        let mut out = Vec::new();
        let mut after = p.after_id;
        while (out.len() as i64) < p.limit {
            let rows = sqlx::query(include_str!("../queries/chunk_vectors_page.sql"))
                .bind(&p.document_ids)
                .bind(after)
                .bind(p.limit)
                .bind(&p.embedder_fingerprint)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
            for row in &rows {
                after = row.try_get("id").map_err(rows::decode)?;
                if row.try_get("live").map_err(rows::decode)? {
                    out.push(rows::vector(row)?);
                }
            }
            if (rows.len() as i64) < p.limit {
                break;
            }
        }
        out.truncate(p.limit.max(0) as usize);
        Ok(out)
    }
}

fn check_window(limit: i64, offset: i64) -> Result<()> {
    if limit < 0 || offset < 0 {
        return Err(Error::Invalid(format!(
            "limit {limit} and offset {offset} must not be negative"
        )));
    }
    Ok(())
}

/// A timing as the statements take it: the key (NULL for none) and the milliseconds.
fn split_timing(t: &Option<(String, i64)>) -> (Option<&str>, Option<i64>) {
    match t {
        Some((k, ms)) => (Some(k.as_str()), Some(*ms)),
        None => (None, None),
    }
}
