-- customer_profitability's rows of the months customer_trends reads for the months in
-- mart_targets (the 12 months ending with each, or the two growth windows when longer), with
-- the month as a number (year * 12 + month, so that windows are integer ranges) and the margin
-- (temp view trend_series, read by trend_windows.sql and trend_windows_grid.sql).
with bounds as (
    select
        -- the months read, as YYYY-MM text, to filter the period column as it is stored
        strftime(
            min(t.period_start) - to_months(greatest(12, 2 * any_value(p.growth_months) - 1)),
            '%Y-%m'
        ) as first_period,
        max(t.period) as last_period,
    from mart_targets as t
    cross join mart_params as p
)

select
    c.customer_id,
    cast(left(c.period, 4) as integer) * 12 + cast(right(c.period, 2) as integer) as mi,
    c.net_revenue,
    c.cost_to_serve,
    c.operating_profit,
    case
        when c.net_revenue > 0 then round(c.operating_profit * 100 / c.net_revenue, 4)
    end::decimal(18, 4) as margin,
from marts.customer_profitability as c
cross join bounds as b
where c.period between b.first_period and b.last_period
