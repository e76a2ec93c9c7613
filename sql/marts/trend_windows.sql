-- Each customer's sums over the windows of customer_trends (trailing profit and revenue, the
-- margin slope's sums, the growth windows) and the run of months declining, for every month in
-- mart_targets and every customer with a profitability row in the 12 months ending with it
-- (temp view trend_windows, read by customer_trends.sql). Months are numbered year * 12 + month
-- so that windows are integer ranges. For a few months: each month joined to the months of its
-- windows. trend_windows_grid.sql gives the same rows for many months at once.
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

-- The run of declines ending with each target month, at most 12: the months since the latest
-- month of the 13 up to it that did not decline, else 12 (a customer's first month in the
-- series never declines). Only the target months' runs are counted, not every month's (two
-- window sorts of the series: 2.0 -> 1.2 s for one month at L).
streaks as (
    select
        d.customer_id,
        t.mi,
        coalesce(t.mi - max(d.mi) filter (not d.declined), 12) as streak,
    from targets as t
    join declines as d on d.mi between t.mi - 12 and t.mi
    group by d.customer_id, t.mi
    having max(d.mi) = t.mi
),

windows as (
    select
        t.period,
        t.mi,
        s.customer_id,
        coalesce(sum(s.operating_profit) filter (s.mi > t.mi - 3), 0) as profit_3m,
        coalesce(sum(s.operating_profit) filter (s.mi > t.mi - 6), 0) as profit_6m,
        coalesce(sum(s.operating_profit) filter (s.mi > t.mi - 12), 0) as profit_12m,
        coalesce(sum(s.net_revenue) filter (s.mi > t.mi - 3), 0) as revenue_3m,
        coalesce(sum(s.net_revenue) filter (s.mi > t.mi - 6), 0) as revenue_6m,
        coalesce(sum(s.net_revenue) filter (s.mi > t.mi - 12), 0) as revenue_12m,
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
    from targets as t
    join series as s on s.mi between t.mi - greatest(12, 2 * (select growth_months from mart_params)) and t.mi
    cross join mart_params as p
    group by t.period, t.mi, s.customer_id
    having count(*) filter (s.mi > t.mi - 12) > 0
)

select w.*, coalesce(st.streak, 0) as months_declining,
from windows as w
left join streaks as st on st.customer_id = w.customer_id and st.mi = w.mi
