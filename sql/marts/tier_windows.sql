-- Each customer's totals over the trailing window (mart_params.window_months, ending with the
-- month) of every month in mart_targets, for customer_tiers.sql (as temp table tier_windows):
-- the months with a profitability row and the sums. For a few months: the two parts of each
-- window (temp table tier_parts, tier_parts.sql) added up. tier_windows_grid.sql gives the same
-- rows for many months at once.
with targets as (
    select
        t.period,
        strftime(t.period_start - to_months(p.window_months - 1), '%Y-%m') as window_start,
        strftime(t.period_start - to_months(1), '%Y-%m') as previous_period,
    from mart_targets as t
    cross join mart_params as p
)

select
    t.period,
    t.window_start,
    t.previous_period,
    w.customer_id,
    sum(w.months_active)::bigint as months_active,
    sum(w.gross_revenue) as gross_revenue,
    sum(w.net_revenue) as net_revenue,
    sum(w.cost_to_serve) as cost_to_serve,
    sum(w.operating_profit) as operating_profit,
from targets as t
join tier_parts as w on w.period = t.period
group by all
