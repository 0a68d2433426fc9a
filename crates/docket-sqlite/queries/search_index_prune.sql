-- Drops the entries of documents ?2 (a JSON array of ids) older than clock number ?1: a
-- document keeps only its latest.
DELETE FROM search_index_log
WHERE document_id IN (SELECT value FROM json_each(?2)) AND seq < ?1
