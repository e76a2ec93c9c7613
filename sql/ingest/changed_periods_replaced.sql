-- The months of the versions this run's rows replace: a correction can move a line to another
-- month, which must be re-allocated too. Run before ingest/merge_replace deletes them, and only
-- when the raw table had rows before the run. The range of the run's first key column ($low,
-- $high) lets the scan skip row groups of older keys. {table}, {first_key}, {key_match} and
-- {period_expr} come from the fixed source contract.
INSERT INTO audit.changed_periods
SELECT DISTINCT {period_expr} AS period, $source, $run_id, current_localtimestamp()
FROM {table} AS t
WHERE t._file_id < $first
    AND t.{first_key} BETWEEN $low AND $high
    AND EXISTS (SELECT 1 FROM {table} AS s WHERE s._file_id >= $first AND {key_match});
