//! The [`DocumentStore`] half of the executor: documents, texts, chunks and vectors.

use std::ops::DerefMut;

use docket_core::*;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::exec::{SqliteExec, atomic, check_limit, commit, map_err};
use crate::rows::{self, micros, now_micros, uuid_text};

impl<C> DocumentStore for SqliteExec<C>
where
    C: DerefMut<Target = SqliteConnection> + Send,
{
    async fn document_insert(&mut self, p: &DocumentInsertParams) -> Result<DocumentRow> {
        p.validate()?;
        let row = sqlx::query(sql!("document_insert"))
            .bind(uuid_text(p.id))
            .bind(p.source.as_str())
            .bind(p.filename.as_deref())
            .bind(p.content_type.as_deref())
            .bind(p.size_bytes)
            .bind(p.sha256.as_str())
            .bind(p.storage_key.as_str())
            .bind(p.callback_url.as_deref())
            .bind(json_text!(&p.metadata)?)
            .bind(p.priority)
            .bind(now_micros(p.now))
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
        let row = sqlx::query(sql!("document_get"))
            .bind(uuid_text(id))
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::document).transpose()
    }

    async fn document_find_by_sha256(&mut self, sha256: &str) -> Result<Option<DocumentRow>> {
        let row = sqlx::query(sql!("document_find_by_sha256"))
            .bind(sha256)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::document).transpose()
    }

    async fn document_list(&mut self, p: &DocumentListParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        let rows = sqlx::query(sql!("document_list"))
            .bind(p.status.map(DocumentStatus::as_str))
            .bind(p.source.map(DocumentSource::as_str))
            .bind(p.before.map(uuid_text))
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::document).collect()
    }

    async fn document_set_stage(&mut self, p: &DocumentStageParams) -> Result<bool> {
        p.validate()?;
        let (key, ms) = split_timing(&p.timing);
        let done = sqlx::query(sql!("document_set_stage"))
            .bind(uuid_text(p.id))
            .bind(p.generation)
            .bind(p.status.as_str())
            .bind(p.stage.as_deref())
            .bind(p.progress)
            .bind(key)
            .bind(ms)
            .bind(now_micros(p.now))
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn document_set_progress(&mut self, p: &DocumentProgressParams) -> Result<bool> {
        p.validate()?;
        let done = sqlx::query(sql!("document_set_progress"))
            .bind(uuid_text(p.id))
            .bind(p.generation)
            .bind(p.progress)
            .bind(now_micros(p.now))
            .bind(p.generation_embedder.as_deref())
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn document_fail(&mut self, p: &DocumentFailParams) -> Result<bool> {
        let done = sqlx::query(sql!("document_fail"))
            .bind(uuid_text(p.id))
            .bind(p.generation)
            .bind(p.stage.as_str())
            .bind(p.error.as_str())
            .bind(now_micros(p.now))
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn document_cancel(&mut self, p: &DocumentCancelParams) -> Result<Vec<Uuid>> {
        if p.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = p.ids.iter().map(|id| uuid_text(*id)).collect();
        let rows: Vec<String> = sqlx::query_scalar(sql!("document_cancel"))
            .bind(json_text!(&ids)?)
            .bind(p.reason.as_str())
            .bind(now_micros(p.now))
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let mut out = rows
            .iter()
            .map(|s| {
                Uuid::parse_str(s).map_err(|e| Error::Decode(format!("bad document id {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_unstable();
        Ok(out)
    }

    async fn document_activate(&mut self, p: &DocumentActivateParams) -> Result<bool> {
        p.validate()?;
        let (key, ms) = split_timing(&p.timing);
        let id = uuid_text(p.id);
        let mut tx = atomic(&mut self.conn).await?;
        let activated: Option<String> = sqlx::query_scalar(sql!("document_activate"))
            .bind(id.as_str())
            .bind(p.generation)
            .bind(p.chunk_count)
            .bind(p.token_count)
            .bind(p.embedder.as_deref())
            .bind(key)
            .bind(ms)
            .bind(p.status.as_str())
            .bind(p.progress)
            .bind(now_micros(p.now))
            .bind(p.embedder_fingerprint.as_deref())
            .bind(p.chunker_fingerprint.as_deref())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if activated.is_none() {
            commit(tx).await?;
            return Ok(false);
        }
        drop_other_generations(&mut tx, &id, Some(p.generation)).await?;
        log_search_index(&mut tx, &[id]).await?;
        commit(tx).await?;
        Ok(true)
    }

    async fn document_reprocess(
        &mut self,
        p: &DocumentReprocessParams,
    ) -> Result<Option<DocumentRow>> {
        let id = uuid_text(p.id);
        let mut tx = atomic(&mut self.conn).await?;
        let row = sqlx::query(sql!("document_reprocess"))
            .bind(id.as_str())
            .bind(now_micros(p.now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            commit(tx).await?;
            return Ok(None);
        };
        let doc = rows::document(&row)?;
        drop_other_generations(&mut tx, &id, doc.active_generation).await?;
        commit(tx).await?;
        Ok(Some(doc))
    }

    async fn document_embedders(&mut self) -> Result<Vec<EmbedderCount>> {
        let rows: Vec<(Option<String>, Option<String>, bool, i64)> =
            sqlx::query_as(sql!("document_embedders"))
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
        let mut tx = atomic(&mut self.conn).await?;
        let ids: Vec<String> = sqlx::query_scalar(sql!("document_embedder_adopt"))
            .bind(p.embedder.as_str())
            .bind(p.embedder_fingerprint.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        log_search_index(&mut tx, &ids).await?;
        commit(tx).await?;
        Ok(ids.len() as u64)
    }

    async fn document_reembed(&mut self, p: &DocumentReembedParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        let mut tx = atomic(&mut self.conn).await?;
        let rows = sqlx::query(sql!("document_reembed"))
            .bind(p.embedder_fingerprint.as_str())
            .bind(p.chunker_fingerprint.as_str())
            .bind(p.limit)
            .bind(now_micros(p.now))
            .bind(p.after.map(uuid_text))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut docs = rows
            .iter()
            .map(rows::document)
            .collect::<Result<Vec<_>>>()?;
        docs.sort_by_key(|d| d.id);
        for doc in &docs {
            let id = uuid_text(doc.id);
            drop_other_generations(&mut tx, &id, doc.active_generation).await?;
            let copies = if doc.chunker_fingerprint.as_deref() == Some(&p.chunker_fingerprint) {
                &[sql!("document_text_copy"), sql!("chunk_copy")][..]
            } else {
                &[sql!("document_text_copy")][..]
            };
            for statement in copies {
                sqlx::query(statement)
                    .bind(id.as_str())
                    .bind(doc.active_generation)
                    .bind(doc.generation)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
        commit(tx).await?;
        Ok(docs)
    }

    async fn document_ids_present(&mut self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        check_ids_present(ids)?;
        let ids: Vec<String> = ids.iter().copied().map(uuid_text).collect();
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM documents WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(serde_json::Value::from(ids).to_string())
        .fetch_all(&mut *self.conn)
        .await
        .map_err(map_err)?;
        found
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|e| Error::Database(Box::new(e))))
            .collect()
    }

    async fn document_delete(&mut self, id: Uuid) -> Result<bool> {
        let id = uuid_text(id);
        let mut tx = atomic(&mut self.conn).await?;
        let done = sqlx::query(sql!("document_delete"))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            log_search_index(&mut tx, &[id]).await?;
        }
        commit(tx).await?;
        Ok(deleted)
    }

    async fn search_index_changes(
        &mut self,
        p: &SearchIndexChangesParams,
    ) -> Result<Vec<SearchIndexChange>> {
        p.validate()?;
        let rows: Vec<(i64, String, bool, Option<String>, i64)> =
            sqlx::query_as(sql!("search_index_changes"))
                .bind(p.after_seq)
                .bind(uuid_text(p.after_document))
                .bind(p.limit)
                .fetch_all(&mut *self.conn)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(seq, id, searchable, embedder_fingerprint, chunk_count)| {
                Ok(SearchIndexChange {
                    seq,
                    document_id: Uuid::parse_str(&id)
                        .map_err(|e| Error::Decode(format!("bad document id {id:?}: {e}")))?,
                    searchable,
                    embedder_fingerprint,
                    chunk_count,
                })
            })
            .collect()
    }

    async fn document_list_stuck(&mut self, p: &StuckDocumentsParams) -> Result<Vec<DocumentRow>> {
        p.validate()?;
        let rows = sqlx::query(sql!("document_list_stuck"))
            .bind(micros(p.updated_before))
            .bind(p.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::document).collect()
    }

    async fn document_text_upsert(&mut self, t: &DocumentText) -> Result<()> {
        validate_document_text(t)?;
        sqlx::query(sql!("document_text_upsert"))
            .bind(uuid_text(t.document_id))
            .bind(t.generation)
            .bind(t.format.as_str())
            .bind(t.text.as_str())
            .bind(json_text!(&t.sections)?)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn document_text_get(&mut self, key: GenerationKey) -> Result<Option<DocumentText>> {
        let row = sqlx::query(sql!("document_text_get"))
            .bind(uuid_text(key.document_id))
            .bind(key.generation)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::text).transpose()
    }

    async fn chunk_replace(&mut self, params: ChunkReplaceParams<'_>) -> Result<u64> {
        validate_chunks(params.chunks)?;
        let input: Vec<_> = params
            .chunks
            .iter()
            .map(|c| {
                (
                    c.chunk_index,
                    c.text.as_str(),
                    c.char_start,
                    c.char_end,
                    c.token_count,
                    &c.heading_path,
                    c.page,
                )
            })
            .collect();
        let input = json_text!(&input)?;
        let id = uuid_text(params.document_id);
        let mut tx = atomic(&mut self.conn).await?;
        sqlx::query(sql!("chunk_delete_generation"))
            .bind(id.as_str())
            .bind(params.generation)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let inserted = sqlx::query(sql!("chunk_replace"))
            .bind(id.as_str())
            .bind(params.generation)
            .bind(input.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        commit(tx).await?;
        Ok(inserted)
    }

    async fn chunk_list(&mut self, params: ChunkListParams) -> Result<Vec<ChunkRow>> {
        if params.offset < 0 {
            return Err(Error::Invalid(format!(
                "offset {} is negative",
                params.offset
            )));
        }
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("chunk_list"))
            .bind(uuid_text(params.document_id))
            .bind(params.generation)
            .bind(params.limit)
            .bind(params.offset)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::chunk).collect()
    }

    async fn chunk_list_unembedded(
        &mut self,
        params: ChunkListUnembeddedParams,
    ) -> Result<Vec<ChunkRow>> {
        if !check_limit(params.limit)? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("chunk_list_unembedded"))
            .bind(uuid_text(params.document_id))
            .bind(params.generation)
            .bind(params.limit)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::chunk).collect()
    }

    async fn chunk_set_embeddings(&mut self, embeddings: &[(i64, Vec<f32>)]) -> Result<u64> {
        if embeddings.is_empty() {
            return Ok(0);
        }
        let input: Vec<(i64, String)> = embeddings
            .iter()
            .map(|(id, v)| (*id, rows::hex(&encode_vector(v))))
            .collect();
        let done = sqlx::query(sql!("chunk_set_embeddings"))
            .bind(json_text!(&input)?)
            .execute(&mut *self.conn)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn chunk_count_embedded(&mut self, key: GenerationKey) -> Result<(i64, i64)> {
        sqlx::query_as(sql!("chunk_count_embedded"))
            .bind(uuid_text(key.document_id))
            .bind(key.generation)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)
    }

    async fn chunk_vectors_page(&mut self, p: &ChunkVectorPageParams) -> Result<Vec<ChunkVector>> {
        p.validate()?;
        if p.limit == 0 {
            return Ok(Vec::new());
        }
        let ids = ids_json(p.document_ids.as_deref())?;
        let chunk_ids = p
            .chunk_ids
            .as_ref()
            .map(|ids| json_text!(ids))
            .transpose()?;
        let statement = if chunk_ids.is_some() {
            sql!("chunk_vectors_by_id")
        } else if p
            .document_ids
            .as_ref()
            .is_some_and(|d| d.len() <= FEW_DOCUMENTS)
        {
            sql!("chunk_vectors_of_documents")
        } else {
            sql!("chunk_vectors_page")
        };
        let mut query = sqlx::query(statement)
            .bind(ids)
            .bind(p.after_id)
            .bind(p.limit)
            .bind(p.embedder_fingerprint.as_deref());
        if let Some(chunk_ids) = chunk_ids {
            query = query.bind(chunk_ids);
        }
        let rows = query.fetch_all(&mut *self.conn).await.map_err(map_err)?;
        rows.iter().map(rows::vector).collect()
    }

    async fn chunk_get_many(&mut self, ids: &[i64]) -> Result<Vec<ChunkRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(sql!("chunk_get_many"))
            .bind(json_text!(ids)?)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::chunk).collect()
    }

    async fn document_filter(&mut self, p: &DocumentFilterParams) -> Result<Vec<Uuid>> {
        p.validate()?;
        let rows: Vec<(String, String)> = sqlx::query_as(sql!("document_filter"))
            .bind(p.filename_contains.as_deref())
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let mut ids = Vec::new();
        for (id, metadata) in rows {
            if let Some(filter) = &p.metadata {
                let metadata: serde_json::Value = serde_json::from_str(&metadata)
                    .map_err(|e| Error::Decode(format!("bad metadata of {id}: {e}")))?;
                if !json_contains(&metadata, filter) {
                    continue;
                }
            }
            ids.push(
                Uuid::parse_str(&id)
                    .map_err(|e| Error::Decode(format!("bad document id {id:?}: {e}")))?,
            );
        }
        Ok(ids)
    }

    async fn chunk_text_search(&mut self, p: &ChunkTextSearchParams) -> Result<Vec<ChunkScore>> {
        p.validate()?;
        let terms = text_terms(&p.query);
        if terms.is_empty() || p.k == 0 || p.document_ids.as_ref().is_some_and(|d| d.is_empty()) {
            return Ok(Vec::new());
        }
        // Each word quoted: FTS5 reads it as a plain term, never as an operator.
        let query: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
        let ids = ids_json(p.document_ids.as_deref())?;
        let rows: Vec<(i64, String, f64)> = sqlx::query_as(sql!("chunk_text_search"))
            .bind(query.join(" OR "))
            .bind(ids)
            .bind(p.k)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, document_id, score)| {
                Ok(ChunkScore {
                    id,
                    document_id: Uuid::parse_str(&document_id).map_err(|e| {
                        Error::Decode(format!("bad document id {document_id:?}: {e}"))
                    })?,
                    score: score as f32,
                })
            })
            .collect()
    }

    /// SQLite does not search vectors: callers scan them.
    async fn vector_search_available(&mut self) -> Result<bool> {
        Ok(false)
    }

    async fn vector_index_ensure(&mut self, dims: i32) -> Result<bool> {
        validate_vector_index_dims(dims)?;
        Ok(false)
    }

    async fn chunk_search(&mut self, p: &ChunkSearchParams) -> Result<Option<Vec<ChunkScore>>> {
        p.validate()?;
        Ok(None)
    }
}

/// A timing as the statements take it: the key (NULL for none) and the milliseconds.
fn split_timing(t: &Option<(String, i64)>) -> (Option<&str>, Option<i64>) {
    match t {
        Some((k, ms)) => (Some(k.as_str()), Some(*ms)),
        None => (None, None),
    }
}

/// Deletes the texts and chunks of every generation of document `id` but `keep` (all of them
/// when `keep` is `None`).
/// A document filter as SQLite's statements take it: a JSON array of ids, or NULL for every
/// document.
fn ids_json(ids: Option<&[Uuid]>) -> Result<Option<String>> {
    ids.map(|ids| {
        let ids: Vec<String> = ids.iter().copied().map(uuid_text).collect();
        json_text!(&ids)
    })
    .transpose()
}

/// A scope of at most this many documents is read from the documents (each page sorts
/// their chunks); a larger one by walking the chunks in id order.
const FEW_DOCUMENTS: usize = 256;

/// Logs documents `ids` for the search index under the clock's next number (migration 0007),
/// in the caller's transaction.
async fn log_search_index(conn: &mut SqliteConnection, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let seq: i64 = sqlx::query_scalar(sql!("search_index_tick"))
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
    let ids = json_text!(ids)?;
    for statement in [sql!("search_index_prune"), sql!("search_index_log")] {
        sqlx::query(statement)
            .bind(seq)
            .bind(ids.as_str())
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

async fn drop_other_generations(
    conn: &mut SqliteConnection,
    id: &str,
    keep: Option<i32>,
) -> Result<()> {
    for statement in [sql!("document_drop_chunks"), sql!("document_drop_texts")] {
        sqlx::query(statement)
            .bind(id)
            .bind(keep)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}
