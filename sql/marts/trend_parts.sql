-- Each customer's sums over the windows of customer_trends (trailing profit and revenue, the
-- margin slope's sums, the growth windows), for every month in mart_targets and every customer
-- with a profitability row in the months read (temp view trend_series), in two parts: the
-- months before the month (`earlier`) and the month itself, which trend_windows.sql adds up
-- (temp table trend_parts). Months are numbered year * 12 + month so that windows are integer
-- ranges. A sum over no rows is null, so that adding up the parts gives what one sum over both
-- gives. When the series holds the months in mart_targets alone (trend_span.sql, $month_only),
-- only the month's own parts come out: the earlier ones are kept in marts.trend_earlier_months
-- (pfd_pipeline/marts.stage_parts).
with targets as (
    select period, period_start, year(period_start) * 12 + month(period_start) as mi,
    from mart_targets
),

-- read through a CTE, not the view: DuckDB scans a CTE read more than once a single time,
-- a view once per read (three times here: 1.2 -> 1.45 s for one month at L)
series as (from trend_series),

-- A month "declined" when the month before has a margin and this month's is lower (a join to
-- the month before: no sort of the series).
declines as (
    select
        s.customer_id,
        s.mi,
        coalesce(s.margin < b.margin, false) as declined,
    from series as s
    left join series as b on b.customer_id = s.customer_id and b.mi = s.mi - 1
),

-- The latest of the 12 months before each target month that did not decline: a run of declines
-- ending with the month starts after it (trend_windows.sql). Only the target months' runs are
-- counted, not every month's (two window sorts of the series: 2.0 -> 1.2 s for one month at L).
calm as (
    select
        t.mi,
        d.customer_id,
        max(d.mi) as last_calm,
    from targets as t
    join declines as d on d.mi between t.mi - 12 and t.mi - 1
    where not d.declined
    group by all
),

parts as (
    select
        t.period,
        t.mi,
        s.customer_id,
        s.mi < t.mi as earlier,
        sum(s.operating_profit) filter (s.mi > t.mi - 3) as profit_3m,
        sum(s.operating_profit) filter (s.mi > t.mi - 6) as profit_6m,
        sum(s.operating_profit) filter (s.mi > t.mi - 12) as profit_12m,
        sum(s.net_revenue) filter (s.mi > t.mi - 3) as revenue_3m,
        sum(s.net_revenue) filter (s.mi > t.mi - 6) as revenue_6m,
        sum(s.net_revenue) filter (s.mi > t.mi - 12) as revenue_12m,
        count(*) filter (s.mi > t.mi - 12) as months_12m,
        count(s.margin) filter (s.mi > t.mi - p.slope_months) as n,
        sum(s.mi - t.mi) filter (s.mi > t.mi - p.slope_months and s.margin is not null) as sx,
        sum((s.mi - t.mi) * (s.mi - t.mi))
            filter (s.mi > t.mi - p.slope_months and s.margin is not null) as sxx,
        sum(s.margin) filter (s.mi > t.mi - p.slope_months) as sy,
        sum((s.mi - t.mi) * s.margin) filter (s.mi > t.mi - p.slope_months) as sxy,
        sum(s.net_revenue) filter (s.mi > t.mi - p.growth_months) as revenue_recent,
        sum(s.net_revenue)
            filter (s.mi <= t.mi - p.growth_months and s.mi > t.mi - 2 * p.growth_months)
            as revenue_prior,
        sum(s.cost_to_serve) filter (s.mi > t.mi - p.growth_months) as cost_recent,
        sum(s.cost_to_serve)
            filter (s.mi <= t.mi - p.growth_months and s.mi > t.mi - 2 * p.growth_months)
            as cost_prior,
        -- one row per customer and month: the margin of the month before, and the month's
        any_value(s.margin) filter (s.mi = t.mi - 1) as previous_margin,
        any_value(s.margin) filter (s.mi = t.mi) as margin,
    from targets as t
    join series as s on s.mi between t.mi - greatest(12, 2 * (select growth_months from mart_params)) and t.mi
    cross join mart_params as p
    group by t.period, t.mi, s.customer_id, s.mi < t.mi
)

select p.*, c.last_calm,
from parts as p
left join calm as c on p.earlier and c.mi = p.mi and c.customer_id = p.customer_id
