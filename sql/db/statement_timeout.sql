-- The statement_timeout this connection runs with, in milliseconds (0 = none).
SELECT setting::integer FROM pg_settings WHERE name = 'statement_timeout'
