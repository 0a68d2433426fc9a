SELECT * FROM document_texts WHERE document_id = ?1 AND generation = ?2
