-- Where the feed stands now: the current snapshot and the database's clock (a cursor that starts
-- from here, without reading any task).
SELECT pg_current_snapshot()::text, extract(epoch FROM statement_timestamp())::float8
