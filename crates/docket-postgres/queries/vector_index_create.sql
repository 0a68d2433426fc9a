-- An HNSW index (cosine distance) over the vectors of {dims} dimensions: an expression index
-- on the untyped column, partial to the rows it can hold. chunk_search repeats both the
-- expression and the predicate, so that the planner can use it. {ext}: the extension's
-- schema, quoted, with its dot.
CREATE INDEX IF NOT EXISTS document_chunks_embedding_hnsw_{dims} ON document_chunks
USING hnsw ((embedding_vec::{ext}vector({dims})) {ext}vector_cosine_ops)
WHERE {ext}vector_dims(embedding_vec) = {dims}
