-- The run's files ($first on) whose range of the first key column overlaps another run file's.
-- Validation keeps a key unique within its file, so a key can repeat among the run's rows only
-- between these files: only their keys need grouping (sql/ingest/repeated_keys.sql). Files of
-- keys that grow with time never overlap, and the ranges cost a quarter of grouping every key
-- (2.0 s against 8.3 s for the 98 million events of a first load at L). {table} and
-- {first_key} come from the fixed source contract.
WITH ranges AS (
    SELECT _file_id, min({first_key}) AS low, max({first_key}) AS high
    FROM {table}
    WHERE _file_id >= $first
    GROUP BY _file_id
)

SELECT DISTINCT a._file_id
FROM ranges AS a
INNER JOIN ranges AS b
    ON a._file_id <> b._file_id AND a.low <= b.high AND b.low <= a.high
ORDER BY 1
