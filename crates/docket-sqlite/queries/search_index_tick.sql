-- The next number of the search index clock (see migration 0007); the transaction's write lock
-- keeps it until commit.
UPDATE search_index_clock SET seq = seq + 1 WHERE id = 1 RETURNING seq
