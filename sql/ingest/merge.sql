-- Merge one source's staged rows into its raw table: a key delivered again replaces the earlier
-- version (the latest file wins, then the latest row in it). {table}, {stage}, {key} and
-- {key_match} are identifiers taken from the fixed source contract (pfd_pipeline/sources.py),
-- never from data.
DELETE FROM {table} AS t
USING (SELECT DISTINCT {key} FROM {stage}) AS s
WHERE {key_match};

INSERT INTO {table}
SELECT *
FROM {stage}
QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _file_id DESC, _row_number DESC) = 1;
