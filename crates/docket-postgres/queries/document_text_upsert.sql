INSERT INTO document_texts (document_id, generation, format, text, sections)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (document_id, generation)
DO UPDATE SET format = EXCLUDED.format, text = EXCLUDED.text, sections = EXCLUDED.sections
