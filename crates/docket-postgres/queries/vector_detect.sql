-- pgvector: the schema the `vector` extension is installed in (NULL when it is not), and
-- whether document_chunks (as the search_path finds it) has its embedding_vec column.
SELECT (SELECT n.nspname::text
        FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'vector') AS schema,
       EXISTS (SELECT 1
               FROM pg_attribute
               WHERE attrelid = to_regclass('document_chunks')
                 AND attname = 'embedding_vec'
                 AND NOT attisdropped) AS has_column
