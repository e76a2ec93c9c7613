-- Each customer's totals over the trailing window (mart_params.window_months, ending with the
-- month) of every month in mart_targets, in two parts: the window's months before the month
-- (`earlier`) and the month itself, which tier_windows.sql adds up (temp table tier_parts).
-- $month_only: the month's own part only; the earlier part then comes from the one kept in
-- marts.tier_earlier_months (pfd_pipeline/marts.stage_parts), so that a daily run reads one
-- month of customer_profitability instead of the window's twelve.
with targets as (
    select
        t.period,
        case
            when $month_only then t.period
            else strftime(t.period_start - to_months(p.window_months - 1), '%Y-%m')
        end as first_period,
    from mart_targets as t
    cross join mart_params as p
)

select
    t.period,
    c.period < t.period as earlier,
    c.customer_id,
    count(*) as months_active,
    sum(c.gross_revenue) as gross_revenue,
    sum(c.net_revenue) as net_revenue,
    sum(c.cost_to_serve) as cost_to_serve,
    sum(c.operating_profit) as operating_profit,
from targets as t
join marts.customer_profitability as c
    on c.period between t.first_period and t.period
group by all
