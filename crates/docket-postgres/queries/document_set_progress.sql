-- Progress only rises, within the caller's generation, while the document is unfinished.
UPDATE documents
SET progress = greatest(progress, $3::int2),
    generation_embedder = coalesce($5::text, generation_embedder),
    updated_at = coalesce($4::timestamptz, now())
WHERE id = $1 AND generation = $2 AND status NOT IN ('completed', 'failed', 'cancelled')
