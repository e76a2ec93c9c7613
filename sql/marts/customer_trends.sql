-- Rebuild marts.customer_trends for the months in mart_targets, for every customer with a
-- profitability row in the 12 months ending with the month. Months are numbered
-- year * 12 + month so that windows are integer ranges. The margin slope is the least-squares
-- slope, computed from exact sums (n*Sxy - Sx*Sy) / (n*Sxx - Sx^2) so that re-runs give
-- identical values; only the final division is in floating point, then rounded.
delete from marts.customer_trends
where period in (select period from mart_targets);

insert into marts.customer_trends
with targets as (
    select period, period_start, year(period_start) * 12 + month(period_start) as mi,
    from mart_targets
),

bounds as (
    select
        -- the months read, as YYYY-MM text, to filter the period column as it is stored
        strftime(
            min(t.period_start) - to_months(greatest(12, 2 * any_value(p.growth_months) - 1)),
            '%Y-%m'
        ) as first_period,
        max(t.period) as last_period,
    from targets as t
    cross join mart_params as p
),

series as (
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
),

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
),

measured as (
    select
        w.*,
        case
            when w.n >= 3
                then round((w.n * w.sxy - w.sx * w.sy) / (w.n * w.sxx - w.sx * w.sx), 4)
        end as margin_slope_pp,
        coalesce(st.streak, 0) as months_declining,
    from windows as w
    left join streaks as st on st.customer_id = w.customer_id and st.mi = w.mi
)

select
    m.period,
    m.customer_id,
    coalesce(k.segment, 'unknown'),
    m.profit_3m,
    m.profit_6m,
    m.profit_12m,
    m.revenue_12m,
    case when m.revenue_3m > 0 then round(m.profit_3m * 100 / m.revenue_3m, 2) end,
    case when m.revenue_6m > 0 then round(m.profit_6m * 100 / m.revenue_6m, 2) end,
    case when m.revenue_12m > 0 then round(m.profit_12m * 100 / m.revenue_12m, 2) end,
    m.margin_slope_pp,
    m.n,
    case
        when m.revenue_prior > 0 then round((m.revenue_recent - m.revenue_prior) * 100 / m.revenue_prior, 2)
    end,
    case
        when m.cost_prior > 0 then round((m.cost_recent - m.cost_prior) * 100 / m.cost_prior, 2)
    end,
    m.months_declining,
    case
        when m.margin_slope_pp is null then 'insufficient history'
        when m.margin_slope_pp <= -p.stable_slope_pp or m.months_declining >= p.declining_months
            then 'declining'
        when m.margin_slope_pp >= p.stable_slope_pp then 'improving'
        else 'stable'
    end,
from measured as m
cross join mart_params as p
left join raw.customers as k on k.customer_id = m.customer_id;
