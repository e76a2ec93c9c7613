-- What trend_windows.sql gives, for many months at once: one pass over a customer x month grid
-- of running totals from the first month with data, instead of joining every month end to
-- every month of its windows.
with targets as (
    select period, period_start, year(period_start) * 12 + month(period_start) as mi,
    from mart_targets
),

bounds as (
    select
        min(t.mi) - greatest(12, 2 * any_value(p.growth_months) - 1) as first_mi,
        max(t.mi) as last_mi,
    from targets as t
    cross join mart_params as p
),

-- read through a CTE, not the view, so that the months are scanned once (see trend_windows.sql)
series as (from trend_series),

-- Every customer of the series on every month of it, with running totals to date: a window's
-- total is the running total at its last month less the one just before it starts (lag), one
-- pass for all month ends instead of joining every month end to every month of its windows.
grid as (
    select c.customer_id, unnest(range(greatest(b.first_mi, m.first_mi), b.last_mi + 1)) as mi,
    from (select distinct customer_id from series) as c
    cross join bounds as b
    -- from the first month with data: the totals before it are 0, as lag's default
    cross join (select min(mi) as first_mi from series) as m
),

running as (
    select
        g.customer_id,
        g.mi,
        count(s.mi) over w as rows_,
        coalesce(sum(s.operating_profit) over w, 0) as profit,
        coalesce(sum(s.net_revenue) over w, 0) as revenue,
        coalesce(sum(s.cost_to_serve) over w, 0) as cost,
        count(s.margin) over w as points,
        coalesce(sum(if(s.margin is not null, g.mi, null)) over w, 0) as sum_mi,
        coalesce(sum(if(s.margin is not null, g.mi * g.mi, null)) over w, 0) as sum_mi2,
        coalesce(sum(s.margin) over w, 0) as sum_margin,
        coalesce(sum(g.mi * s.margin) over w, 0) as sum_mi_margin,
        -- A month "declined" when the month before has a margin and this month's is lower.
        coalesce(s.margin < lag(s.margin) over w, false) as declined,
    from grid as g
    left join series as s using (customer_id, mi)
    window w as (
        partition by g.customer_id order by g.mi rows between unbounded preceding and current row
    )
),

-- The running totals just before each window: 3, 6 and 12 months, the slope window (no longer
-- than the months read before the month end, as the series holds), the growth windows.
lagged as (
    select
        r.*,
        lag(rows_, 12, 0) over l as rows_12,
        lag(profit, 3, 0) over l as profit_3,
        lag(profit, 6, 0) over l as profit_6,
        lag(profit, 12, 0) over l as profit_12,
        lag(revenue, 3, 0) over l as revenue_3,
        lag(revenue, 6, 0) over l as revenue_6,
        lag(revenue, 12, 0) over l as revenue_12,
        lag(points, k.slope, 0) over l as points_s,
        lag(sum_mi, k.slope, 0) over l as sum_mi_s,
        lag(sum_mi2, k.slope, 0) over l as sum_mi2_s,
        lag(sum_margin, k.slope, 0) over l as sum_margin_s,
        lag(sum_mi_margin, k.slope, 0) over l as sum_mi_margin_s,
        lag(rows_, k.growth, 0) over l as rows_g,
        lag(revenue, k.growth, 0) over l as revenue_g,
        lag(cost, k.growth, 0) over l as cost_g,
        lag(rows_, 2 * k.growth, 0) over l as rows_2g,
        lag(revenue, 2 * k.growth, 0) over l as revenue_2g,
        lag(cost, 2 * k.growth, 0) over l as cost_2g,
        -- the run of months declining up to this one (at most 12): since the latest that did not
        -- (a customer's first month on the grid never declines)
        if(declined, least(12, mi - max(if(declined, null, mi)) over l), 0) as months_declining,
    from running as r
    cross join (
        select
            least(slope_months, greatest(12, 2 * growth_months) + 1) as slope,
            growth_months as growth,
        from mart_params
    ) as k
    window l as (
        partition by r.customer_id order by r.mi rows between unbounded preceding and current row
    )
),

windows as (
    select
        t.period,
        t.mi,
        g.customer_id,
        g.profit - g.profit_3 as profit_3m,
        g.profit - g.profit_6 as profit_6m,
        g.profit - g.profit_12 as profit_12m,
        g.revenue - g.revenue_3 as revenue_3m,
        g.revenue - g.revenue_6 as revenue_6m,
        g.revenue - g.revenue_12 as revenue_12m,
        g.points - g.points_s as n,
        -- sums of (month - t.mi) and its square over the points, exactly
        ((g.sum_mi - g.sum_mi_s) - (g.points - g.points_s) * t.mi)::hugeint as sx,
        (
            (g.sum_mi2 - g.sum_mi2_s)
            - 2 * t.mi * (g.sum_mi - g.sum_mi_s)
            + (g.points - g.points_s) * t.mi * t.mi
        )::hugeint as sxx,
        (g.sum_margin - g.sum_margin_s)::decimal(38, 4) as sy,
        (
            (g.sum_mi_margin - g.sum_mi_margin_s) - t.mi * (g.sum_margin - g.sum_margin_s)
        )::decimal(38, 4) as sxy,
        if(g.rows_ > g.rows_g, g.revenue - g.revenue_g, null) as revenue_recent,
        if(g.rows_g > g.rows_2g, g.revenue_g - g.revenue_2g, null) as revenue_prior,
        if(g.rows_ > g.rows_g, g.cost - g.cost_g, null) as cost_recent,
        if(g.rows_g > g.rows_2g, g.cost_g - g.cost_2g, null) as cost_prior,
        g.months_declining,
    from targets as t
    join lagged as g on g.mi = t.mi
    where g.rows_ > g.rows_12
)

from windows
