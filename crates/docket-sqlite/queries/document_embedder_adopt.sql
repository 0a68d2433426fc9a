-- Vectors made before fingerprints were recorded take the fingerprint of the embedder of the
-- same name. ?1: the name; ?2: its fingerprint.
UPDATE documents
SET embedder_fingerprint = ?2
WHERE embedder_fingerprint IS NULL AND active_generation IS NOT NULL AND embedder = ?1
RETURNING id
