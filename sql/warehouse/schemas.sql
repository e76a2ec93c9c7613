-- Schemas of the work store (warehouse/work.duckdb).
--   raw   : accepted landing rows, one current version per key, typed, money as DECIMAL
--   audit : every landing file seen, every rejected row, every failed file
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS audit;
