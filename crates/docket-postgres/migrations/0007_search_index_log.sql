-- docket document store, version 7 (PostgreSQL): a log of the changes to what vector search
-- ranks, so that an in-process vector index (one per `serve` process, where pgvector is not
-- installed) stays in step with the database.

-- Every activation, adoption of an embedder fingerprint and deletion of a document takes the
-- next number from the clock in the transaction that makes it, and logs the document under it.
-- The clock's row stays locked until that transaction ends, so numbers are committed in order:
-- a reader that has seen number n has seen every change below n (a sequence would not do:
-- its numbers commit out of order). Each statement locks the document's row before the
-- clock's. A document keeps only its latest entry.
CREATE TABLE search_index_clock (
    id  int4 PRIMARY KEY CHECK (id = 1),
    seq int8 NOT NULL
);
INSERT INTO search_index_clock (id, seq) VALUES (1, 1);

-- No foreign key: the entry of a deleted document is how readers learn of the deletion.
CREATE TABLE search_index_log (
    seq         int8 NOT NULL,
    document_id uuid NOT NULL,
    PRIMARY KEY (seq, document_id)
);
CREATE INDEX search_index_log_document ON search_index_log (document_id);

INSERT INTO search_index_log (seq, document_id)
SELECT 1, id FROM documents WHERE active_generation IS NOT NULL;
