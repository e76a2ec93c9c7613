-- customer_profitability's rows of the months in temp table trend_span (trend_span.sql), with
-- the month as a number (year * 12 + month, so that windows are integer ranges) and the margin
-- (temp view trend_series, read by trend_parts.sql and trend_windows_grid.sql).
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
cross join trend_span as b
where c.period between b.first_period and b.last_period
