-- Texts of every generation of document ?1 but ?2 (?2 NULL: every generation).
DELETE FROM document_texts WHERE document_id = ?1 AND generation IS NOT ?2
