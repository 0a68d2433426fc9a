-- Texts and chunks go with it (ON DELETE CASCADE).
DELETE FROM documents WHERE id = ?1
