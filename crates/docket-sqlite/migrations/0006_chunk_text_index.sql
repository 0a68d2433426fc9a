-- docket document store, version 6 (SQLite): a full-text index over chunk text, for text and
-- hybrid search. An external-content FTS5 table (the text is stored once, in
-- document_chunks), Porter-stemmed, kept in step by triggers (cascading deletes included).
CREATE VIRTUAL TABLE document_chunks_fts USING fts5(
    text,
    content = 'document_chunks',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER document_chunks_fts_insert AFTER INSERT ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER document_chunks_fts_delete AFTER DELETE ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (document_chunks_fts, rowid, text)
    VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER document_chunks_fts_update AFTER UPDATE OF text ON document_chunks BEGIN
    INSERT INTO document_chunks_fts (document_chunks_fts, rowid, text)
    VALUES ('delete', old.id, old.text);
    INSERT INTO document_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;

-- The chunks stored before this version.
INSERT INTO document_chunks_fts (document_chunks_fts) VALUES ('rebuild');
