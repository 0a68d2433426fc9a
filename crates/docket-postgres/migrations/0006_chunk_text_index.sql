-- docket document store, version 6 (PostgreSQL): a full-text index over chunk text, for text
-- and hybrid search: an English-stemmed tsvector the database keeps in step with the text,
-- and a GIN index over it.
ALTER TABLE document_chunks
    ADD COLUMN text_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;
CREATE INDEX document_chunks_text_idx ON document_chunks USING gin (text_tsv);
