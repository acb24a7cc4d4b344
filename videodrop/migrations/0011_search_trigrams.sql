-- The list's q search (a substring of name, original file name, source_id or origin, any
-- case: sql/lists.sql list_if_search) read every row; a trigram index of the four texts in
-- one finds the candidates instead. pg_trgm ships with PostgreSQL (Debian: in the
-- postgresql-NN package) and is a trusted extension (PostgreSQL 13 and later): the owner
-- of the database may create it, no superuser needed. If it exists already (made by a
-- superuser beforehand), it is used as it is.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX videos_search_trgm_idx ON videos USING gin
    ((name || ' ' || source_id || ' ' || original_filename || ' ' || origin) gin_trgm_ops);
