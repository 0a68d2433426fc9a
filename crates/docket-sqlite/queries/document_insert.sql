INSERT INTO documents
    (id, source, filename, content_type, size_bytes, sha256, storage_key, callback_url,
     metadata, priority, status, progress, generation, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', 0, 1, ?11, ?11)
ON CONFLICT (sha256) DO NOTHING
RETURNING *
