-- The months this run's rows (_file_id >= $first) touch. {table} and {period_expr} come from the
-- fixed source contract.
INSERT INTO audit.changed_periods
SELECT DISTINCT {period_expr} AS period, $source, $run_id, current_localtimestamp()
FROM {table} AS t
WHERE t._file_id >= $first;
