-- A key delivered again replaces the version an earlier run loaded (a correction never adds to
-- it): delete those versions. This run's rows are those with _file_id >= $first. Skipped while
-- the raw table was empty before the run (a first load has nothing to replace). The range of
-- the run's first key column ($low, $high) lets the scan skip row groups of older keys.
-- {table}, {first_key} and {key_match} are identifiers taken from the fixed source contract
-- (pfd_pipeline/sources.py), never from data.
DELETE FROM {table} AS t
WHERE t._file_id < $first
    AND t.{first_key} BETWEEN $low AND $high
    AND EXISTS (SELECT 1 FROM {table} AS s WHERE s._file_id >= $first AND {key_match});
