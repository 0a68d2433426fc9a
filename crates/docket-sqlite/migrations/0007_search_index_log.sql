-- docket document store, version 7 (SQLite): a log of the changes to what vector search ranks,
-- so that an in-process vector index (one per `serve` process) stays in step with the database.

-- Every activation, adoption of an embedder fingerprint and deletion of a document takes the
-- next number from the clock in the transaction that makes it, and logs the document under it.
-- Writers take numbers one at a time and hold them until they commit, so a reader that has
-- seen number n has seen every change below n. A document keeps only its latest entry.
CREATE TABLE search_index_clock (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO search_index_clock (id, seq) VALUES (1, 1);

-- No foreign key: the entry of a deleted document is how readers learn of the deletion.
CREATE TABLE search_index_log (
    seq         INTEGER NOT NULL,
    document_id TEXT    NOT NULL,
    PRIMARY KEY (seq, document_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX search_index_log_document ON search_index_log (document_id);

INSERT INTO search_index_log (seq, document_id)
SELECT 1, id FROM documents WHERE active_generation IS NOT NULL;
