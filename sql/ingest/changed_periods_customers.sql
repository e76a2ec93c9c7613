-- A changed customer master row changes every month that customer has ledger lines or events
-- in (e.g. events of a customer unknown until now become assignable).
INSERT INTO audit.changed_periods
SELECT DISTINCT period, 'customers', $run_id, current_localtimestamp()
FROM (
    SELECT strftime(l.posting_date, '%Y-%m') AS period
    FROM raw.sales_ledger AS l SEMI JOIN stage_customers AS s ON s.customer_id = l.customer_id
    UNION
    SELECT strftime(e.event_date, '%Y-%m') AS period
    FROM raw.activity_events AS e SEMI JOIN stage_customers AS s ON s.customer_id = e.customer_id
);
