-- docket document store, version 5 (SQLite): which embedder made each document's vectors.

-- embedder_fingerprint: the embedder of the active generation's vectors. Search ranks a
-- document only under the running embedder's fingerprint, so vectors of two models are never
-- compared. chunker_fingerprint: how the active generation was chunked (re-embedding keeps
-- the chunks while it matches). generation_embedder: the embedder whose vectors the current
-- generation holds so far (a generation never mixes two). Rows written before this version
-- have none: `serve` adopts those whose embedder name matches the running one at start.
ALTER TABLE documents ADD COLUMN embedder_fingerprint TEXT;
ALTER TABLE documents ADD COLUMN chunker_fingerprint TEXT;
ALTER TABLE documents ADD COLUMN generation_embedder TEXT;
