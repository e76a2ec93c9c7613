-- The months a source's staged rows touch: their own months and, for keys delivered again, the
-- months of the versions they replace (a correction can move a line to another month).
-- {table}, {stage}, {key_match} and {period_expr} come from the fixed source contract.
INSERT INTO audit.changed_periods
SELECT DISTINCT period, $source, $run_id, current_localtimestamp()
FROM (
    SELECT {period_expr} AS period FROM {stage} AS t
    UNION
    SELECT {period_expr} AS period FROM {table} AS t
    WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {key_match})
);
