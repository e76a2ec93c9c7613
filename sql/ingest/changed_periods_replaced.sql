-- The months of the versions this run's rows replace: a correction can move a line to another
-- month, which must be re-allocated too. Run before ingest/merge_replace deletes them, and only
-- when the raw table had rows before the run. {table}, {key_match} and {period_expr} come from
-- the fixed source contract.
INSERT INTO audit.changed_periods
SELECT DISTINCT {period_expr} AS period, $source, $run_id, current_localtimestamp()
FROM {table} AS t
WHERE t._file_id < $first
    AND EXISTS (SELECT 1 FROM {table} AS s WHERE s._file_id >= $first AND {key_match});
