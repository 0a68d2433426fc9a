-- Progress only rises, within the caller's generation, while the document is unfinished.
UPDATE documents
SET progress = max(progress, ?3),
    generation_embedder = coalesce(?5, generation_embedder),
    updated_at = ?4
WHERE id = ?1 AND generation = ?2 AND status NOT IN ('completed', 'failed', 'cancelled')
