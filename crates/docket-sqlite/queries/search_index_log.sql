-- Logs documents ?2 (a JSON array of ids) under clock number ?1.
INSERT INTO search_index_log (seq, document_id)
SELECT ?1, value FROM json_each(?2)
