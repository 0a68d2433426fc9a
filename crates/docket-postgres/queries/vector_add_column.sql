-- pgvector is installed: chunk vectors are also kept as `vector`, untyped so that one column
-- holds any dimensions. {ext}: the extension's schema, quoted, with its dot.
ALTER TABLE document_chunks ADD COLUMN IF NOT EXISTS embedding_vec {ext}vector
