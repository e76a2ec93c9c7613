-- A customer master row this run loaded (_file_id >= $first) that is new or differs from the
-- stored one changes every month that customer has ledger lines or events in (e.g. events of a
-- customer unknown until now become assignable, or a new segment). A snapshot that repeats
-- unchanged customers changes nothing.
INSERT INTO audit.changed_periods
WITH changed AS (
    SELECT s.customer_id
    FROM raw.customers AS s
    WHERE s._file_id >= $first
        AND NOT EXISTS (
            SELECT 1
            FROM raw.customers AS c
            WHERE c._file_id < $first
                AND c.customer_id = s.customer_id
                AND c.customer_name IS NOT DISTINCT FROM s.customer_name
                AND c.segment IS NOT DISTINCT FROM s.segment
                AND c.region IS NOT DISTINCT FROM s.region
                AND c.acquired_on IS NOT DISTINCT FROM s.acquired_on
        )
)
SELECT DISTINCT period, $source, $run_id, current_localtimestamp()
FROM (
    SELECT strftime(l.posting_date, '%Y-%m') AS period
    FROM raw.sales_ledger AS l SEMI JOIN changed AS s ON s.customer_id = l.customer_id
    UNION
    SELECT strftime(e.event_date, '%Y-%m') AS period
    FROM raw.activity_events AS e SEMI JOIN changed AS s ON s.customer_id = e.customer_id
);
